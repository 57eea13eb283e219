"""Shared fixtures: tiny systems built in Python, and one quick fit of the demo."""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")
# compiled models go to a folder of this test session, not to the user's ~/.cache (bayesmfa.inference.compilecache)
if "BAYESMFA_CACHE_DIR" not in os.environ:
    os.environ["BAYESMFA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bayesmfa-test-cache-")
    atexit.register(shutil.rmtree, os.environ["BAYESMFA_CACHE_DIR"], ignore_errors=True)

TINY_SYSTEM = {
    "name": "tiny",
    "unit": "kt",
    "time": {"dim": "year", "start": 2000, "end": 2003},
    "dims": {"region": ["A", "B"]},
    "processes": {
        "mining": {"dims": ["region"]},
        "refining": {"dims": ["region"], "yield": True},
        "use": {"dims": ["region"]},
    },
    "boundary": {"inputs": ["mining"], "sinks": ["use"]},
    "flows": {
        "ore": {"from": "mining", "to": "refining"},
        "ore_trade": {"from": "mining", "to": "refining", "cross": "region"},
        "product": {"from": "refining", "to": "use"},
    },
}

TINY_PRIORS = {
    "inputs": [{"process": "mining", "dist": "LogNormal", "median": 10, "sigma": 0.5, "source": "test"}],
    "steps": [
        {"target": "input", "dist": "HalfNormal", "sigma": 0.1, "source": "test"},
        {"target": "share", "dist": "HalfNormal", "sigma": 0.1, "source": "test"},
    ],
    "shares": [{"process": "mining", "shares": {"ore": 0.8, "ore_trade": 0.2}, "sd_logit": 0.5, "source": "test"}],
    "yields": [{"process": "refining", "dist": "Beta", "alpha": 9, "beta": 1, "source": "test"}],
    "noise": [{"source_type": "stats", "dist": "HalfNormal", "sigma": 0.1, "source": "test"}],
    "factors": [{"name": "gross", "dist": "LogNormal", "median": 1.0, "sigma": 0.1, "source": "test"}],
}


def three_region_system(start: int, end: int) -> dict:
    """CN/US/RoW with unregistered mining in China and a smuggling flow (for plot and report tests)."""
    return {
        "name": "tri",
        "unit": "kt",
        "time": {"dim": "year", "start": start, "end": end},
        "dims": {"region": ["CN", "US", "RoW"]},
        "processes": {
            "mining": {"dims": ["region"]},
            "unregistered_mining": {"dims": ["region"], "coords": {"region": ["CN"]}},
            "refining": {"dims": ["region"]},
            "use": {"dims": ["region"]},
        },
        "boundary": {"inputs": ["mining", "unregistered_mining"], "sinks": ["use"]},
        "flows": {
            "ore": {"from": "mining", "to": "refining"},
            "illegal_ore": {"from": "unregistered_mining", "to": "refining"},
            "oxide": {"from": "refining", "to": "use"},
            "oxide_trade": {"from": "refining", "to": "use", "cross": "region"},
            "smuggling": {"from": "refining", "to": "use", "cross": "region"},
        },
    }


def tiny_records() -> pd.DataFrame:
    rows = [
        {"quantity": "mining", "region": "A", "year": "2000", "value": "10", "unit": "kt", "source_type": "stats", "source": "t"},
        {"quantity": "mining", "region": "B", "year": "2001", "value": "8000", "unit": "t", "source_type": "stats", "source": "t"},
        {"quantity": "ore_trade", "origin": "A", "year": "2002", "value": "2", "unit": "kt", "source_type": "stats",
         "factor": "gross", "source": "t"},
        {"quantity": "use", "year": "2000-2003", "value": "60", "unit": "kt", "source_type": "stats", "source": "t"},
    ]
    return pd.DataFrame(rows).fillna("")


@pytest.fixture
def tiny_system_dict() -> dict:
    return copy.deepcopy(TINY_SYSTEM)


@pytest.fixture
def tiny_priors_dict() -> dict:
    return copy.deepcopy(TINY_PRIORS)


@pytest.fixture
def tiny_problem() -> bm.Problem:
    return bm.make_problem(bm.system_from_dict(TINY_SYSTEM), bm.priors_from_dict(TINY_PRIORS), tiny_records())


@pytest.fixture(scope="session")
def demo_problem() -> bm.Problem:
    from bayesmfa.cases import demo

    return demo.load(ROOT)


@pytest.fixture(scope="session")
def demo_fit(demo_problem):
    """One quick fit of the demo shared by the fast tests (not for accuracy checks)."""
    return bm.fit(demo_problem, draws=150, tune=200, chains=2, seed=3)


def assert_fused_equals_reference(problem, seed: int, n: int = 3, scale: float = 0.4) -> None:  # noqa: ANN001
    """The fused model's log density and gradient equal the reference model's at ``n`` random points."""
    import bayesmfa as bm

    ref, fused = bm.build_model(problem), bm.build_model(problem, fused=True)
    assert [v.name for v in ref.value_vars] == [v.name for v in fused.value_vars]
    logp_ref, logp_fused = ref.compile_logp(), fused.compile_logp()
    grad_ref, grad_fused = ref.compile_dlogp(), fused.compile_dlogp()
    rng = np.random.default_rng(seed)
    for _ in range(n):
        point = {k: v + rng.normal(0.0, scale, np.shape(v)) for k, v in ref.initial_point().items()}
        assert logp_fused(point) == pytest.approx(logp_ref(point), rel=1e-10, abs=1e-8)
        ga = grad_ref(point)
        np.testing.assert_allclose(grad_fused(point), ga, rtol=1e-8, atol=1e-8 * np.abs(ga).max())


def value_point(model, draws, draw: int) -> dict:  # noqa: ANN001
    """The point (value variables, transformed) of one draw of a prior or posterior Dataset with chain 0."""
    point = {}
    for rv in model.free_RVs:
        x = draws[rv.name].isel(chain=0, draw=draw).values
        transform = model.rvs_to_transforms.get(rv)
        point[model.rvs_to_values[rv].name] = transform.forward(x, *rv.owner.inputs).eval() if transform is not None else x
    return point

