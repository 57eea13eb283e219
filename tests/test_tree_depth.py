"""NUTS tree depths: a fixed depth gives every draw the same number of leapfrog steps; settings that cannot run are refused."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import bayesmfa as bm
from bayesmfa.cases import get_case
from bayesmfa.drivers import runner
from bayesmfa.drivers.resultstable import diagnostics_paragraph


def test_equal_minimum_and_maximum_depth_fix_the_steps_of_every_draw(demo_problem):
    pytest.importorskip("nutpie")
    idata = bm.fit(demo_problem, draws=40, tune=60, chains=2, seed=5, prior_draws=0, backend="nutpie",
                   min_tree_depth=3, max_tree_depth=3)
    steps = idata.sample_stats["n_steps"].values
    assert np.all(steps == 2**3 - 1)
    settings = json.loads(idata.posterior.attrs["settings"])
    assert (settings["min_tree_depth"], settings["max_tree_depth"]) == (3, 3)
    capped = bm.fit(demo_problem, draws=40, tune=60, chains=2, seed=5, prior_draws=0, backend="nutpie", max_tree_depth=2)
    assert capped.sample_stats["n_steps"].values.max() <= 2**2 - 1
    pymc = bm.fit(demo_problem, draws=20, tune=30, chains=1, seed=5, prior_draws=0, backend="pymc", max_tree_depth=2)
    assert pymc.sample_stats["tree_depth"].values.max() <= 2


def test_a_minimum_depth_above_the_maximum_is_refused(demo_problem):
    with pytest.raises(ValueError, match="min_tree_depth 5 is above max_tree_depth 4"):
        bm.fit(demo_problem, draws=10, tune=10, chains=1, min_tree_depth=5, max_tree_depth=4, backend="nutpie")
    with pytest.raises(ValueError, match=r"RunSettings\.min_tree_depth 11 is above max_tree_depth 10"):
        runner.RunSettings(min_tree_depth=11)
    with pytest.raises(ValueError, match=r"RunSettings\.max_tree_depth"):
        runner.RunSettings(max_tree_depth=0)


def test_the_cases_depths_go_together_and_yield_to_the_callers():
    ree = get_case("ree")
    assert ree.sampler["min_tree_depth"] == ree.sampler["max_tree_depth"] == 8
    resolved = runner.resolve_settings(ree)
    assert (resolved.min_tree_depth, resolved.max_tree_depth) == (8, 8)
    deeper = runner.resolve_settings(ree, runner.RunSettings(min_tree_depth=9))
    assert (deeper.min_tree_depth, deeper.max_tree_depth) == (9, None)
    uncapped = runner.resolve_settings(ree, runner.RunSettings(max_tree_depth=10))
    assert (uncapped.min_tree_depth, uncapped.max_tree_depth) == (None, 10)
    assert runner.resolve_settings(ree, quick=True).max_tree_depth is None
    kwargs = runner.fit_kwargs(replace(resolved, backend="numpyro"))
    assert kwargs["min_tree_depth"] is None and kwargs["max_tree_depth"] is None
    assert runner.fit_kwargs(replace(resolved, backend="pymc"))["max_tree_depth"] == 8


def test_the_results_paragraph_names_a_fixed_depth():
    base = {"wall_s": 1.0, "max_rhat": 1.0, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 0, "passed": True}
    fixed = diagnostics_paragraph(base | {"settings": {"min_tree_depth": 8, "max_tree_depth": 8}})
    assert "tree depth fixed at 8 (255 leapfrog steps per draw)" in fixed
    assert "tree depth" not in diagnostics_paragraph(base | {"settings": {}})
