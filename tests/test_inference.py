"""Inference: seeds reproduce draws, diagnostics are raised loudly, backends agree with the closed form."""

from __future__ import annotations

import numpy as np
import pytest
from test_analytic import _problem, closed_form

import bayesmfa as bm
from bayesmfa.inference.diagnostics import ConvergenceWarning

OPTIONS = bm.ModelOptions(floor=0.0)


def _fit(**kw):
    return bm.fit(_problem(), options=OPTIONS, **kw)


@pytest.mark.parametrize("backend", ["pymc", "nutpie"])
def test_same_seed_same_draws(backend):
    a = _fit(backend=backend, draws=60, tune=60, chains=2, seed=7)
    b = _fit(backend=backend, draws=60, tune=60, chains=2, seed=7)
    c = _fit(backend=backend, draws=60, tune=60, chains=2, seed=8)
    x, y, z = (d.posterior["external_source"].values for d in (a, b, c))
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, z)


def test_failed_diagnostics_warn_and_strict_raises():
    with pytest.warns(ConvergenceWarning, match="min bulk ESS"):
        bm.fit(_problem(), options=OPTIONS, backend="pymc", draws=20, tune=20, chains=2, seed=1)
    with pytest.raises(bm.DiagnosticsError, match="min bulk ESS"):
        bm.fit(_problem(), options=OPTIONS, backend="pymc", draws=20, tune=20, chains=2, seed=1, strict=True)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend"):
        bm.fit(_problem(), backend="stan")


@pytest.mark.slow
@pytest.mark.parametrize("backend", bm.available_backends())
def test_every_backend_matches_closed_form(backend):
    idata = _fit(backend=backend, draws=1500, tune=1000, chains=2, seed=3)
    log_u = np.log(idata.posterior["external_source"]).values.reshape(-1, 6)
    mean, sd = closed_form()
    assert np.all(np.abs(log_u.mean(0) - mean) < 5 * sd / np.sqrt(500))
    assert np.all(np.abs(log_u.std(0) - sd) < 0.15 * sd)
