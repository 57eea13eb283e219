"""The vectorised rank-normalised R-hat and bulk/tail ESS (:func:`bayesmfa.inference.diagnostics.rank_diagnostics`) give
ArviZ's numbers (``arviz.rhat``, ``arviz.ess(method="bulk"/"tail")``) element by element, to rounding."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayesmfa.inference.diagnostics import diagnostics_table, rank_diagnostics

RTOL = 1e-10


def _arviz(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = xr.Dataset({"x": (("chain", "draw", "element"), values)})
    return az.rhat(ds)["x"].values, az.ess(ds, method="bulk")["x"].values, az.ess(ds, method="tail")["x"].values


def _ar1(rng: np.random.Generator, chains: int, draws: int, n: int, phi: np.ndarray) -> np.ndarray:
    """AR(1) chains of autocorrelation ``phi`` (one per element), with chain offsets so R-hat varies."""
    e = rng.normal(size=(chains, draws, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for i in range(1, draws):
        x[:, i] = phi * x[:, i - 1] + e[:, i]
    return x + rng.normal(scale=0.2, size=(chains, 1, n))


def _assert_as_arviz(values: np.ndarray) -> None:
    for name, ours, theirs in zip(("rhat", "ess_bulk", "ess_tail"), rank_diagnostics(values), _arviz(values)):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0, err_msg=name)


@pytest.mark.parametrize(("chains", "draws"), [(4, 1000), (4, 301), (2, 120), (3, 9)])
def test_mixing_from_independent_to_sticky_as_arviz(chains, draws):
    """Independent draws (short autocorrelation sequences) to sticky chains (sequences longer than the first lags:
    the FFT over every lag), heavy tails, even and odd numbers of draws."""
    rng = np.random.default_rng(draws)
    phi = np.linspace(-0.5, 0.995, 60)
    x = _ar1(rng, chains, draws, 60, phi)
    _assert_as_arviz(np.concatenate([x, np.exp(x[..., :20] * 2), x[..., :10] ** 3], axis=-1))


def test_ties_and_indicator_tails_as_arviz():
    """Tied draws (rounded values, a share clipped at zero in most draws, two values only) rank as ArviZ does; a tail
    indicator that is the same in every draw gives the sample size."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 400, 6))
    x[..., 0] = np.round(x[..., 0], 1)
    x[..., 1] = np.clip(x[..., 1] - 1.8, 0, None)  # 96% zeros: the 5% quantile's indicator is constant
    x[..., 2] = rng.integers(0, 2, size=(4, 400))
    x[..., 3] = np.where(rng.random((4, 400)) < 0.99, 1.0, 2.0)
    _assert_as_arviz(x)


def test_one_chain_falls_back_to_arviz():
    x = np.random.default_rng(3).normal(size=(1, 200, 4))
    rhat, bulk, tail = rank_diagnostics(x)
    assert np.isnan(rhat).all()
    np.testing.assert_allclose(bulk, _arviz(x)[1], rtol=RTOL)


def test_diagnostics_table_as_arviz_over_its_ok_elements():
    """The table's values are ArviZ's for the elements it checks; constant and non-finite ones stay NaN."""
    rng = np.random.default_rng(4)
    x = _ar1(rng, 4, 500, 8, np.full(8, 0.6))
    x[..., 3] = 0.0
    x[1, 2, 5] = np.inf
    table = diagnostics_table(xr.Dataset({"a": (("chain", "draw", "i"), x)}))
    ok = (table["status"] == "ok").to_numpy()
    assert table["status"].tolist().count("constant") == 1 and table["status"].tolist().count("nonfinite") == 1
    for column, theirs in zip(("rhat", "ess_bulk", "ess_tail"), _arviz(x[..., ok])):
        np.testing.assert_allclose(table.loc[ok, column].to_numpy(), theirs, rtol=RTOL, atol=0)
    assert table.loc[~ok, ["rhat", "ess_bulk", "ess_tail"]].isna().all().all()


def test_twin_elements_computed_once_give_arviz_numbers():
    """Elements with identical draws (a quantity reported twice) and ones that share only their first draws."""
    rng = np.random.default_rng(5)
    x = _ar1(rng, 4, 200, 6, np.full(6, 0.4))
    near = x[..., 1].copy()
    near[3, -1] += 1.0  # the same first draws as element 1, a different last one
    _assert_as_arviz(np.concatenate([x, x[..., [2, 0]], near[..., None], x[..., [2]]], axis=-1))
