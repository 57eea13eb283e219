"""Summaries on hand-built posteriors: values match numpy, intervals ordered, prob configurable."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr

import bayesmfa as bm
from bayesmfa.summaries import interval_columns


@pytest.fixture
def posterior():
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(2, 500, 3, 2))
    ds = xr.Dataset(
        {"flow_x": (("chain", "draw", "year", "region"), x)},
        coords={"chain": [0, 1], "draw": np.arange(500), "year": [2000, 2001, 2002], "region": ["A", "B"]},
    )
    return az.InferenceData(posterior=ds)


def test_summary_matches_numpy(posterior):
    df = bm.summarize(posterior)
    x = posterior.posterior["flow_x"].values.reshape(1000, 3, 2)
    row = df[(df.year == 2001) & (df.region == "B")].iloc[0]
    assert row["mean"] == pytest.approx(x[:, 1, 1].mean())
    assert row["sd"] == pytest.approx(x[:, 1, 1].std(ddof=1))
    assert row["q05"] == pytest.approx(np.quantile(x[:, 1, 1], 0.05))
    assert row["q95"] == pytest.approx(np.quantile(x[:, 1, 1], 0.95))
    assert (df["q05"] <= df["q50"]).all() and (df["q50"] <= df["q95"]).all()
    assert list(df.columns) == ["quantity", "year", "region", "mean", "sd", "q05", "q50", "q95"]


def test_derived_quantity_aggregates_per_draw_before_quantiles(posterior):
    total = bm.summarize(posterior, {"total": lambda d: d["flow_x"].sum("region")}, prob=0.5)
    x = posterior.posterior["flow_x"].values.reshape(1000, 3, 2).sum(-1)
    assert set(total.columns) >= {"q25", "q75"}
    assert total["q25"].tolist() == pytest.approx(np.quantile(x, 0.25, axis=0).tolist())
    # the sum of quantiles is not the quantile of the sum
    parts = bm.summarize(posterior, prob=0.5).groupby("year")["q75"].sum().values
    assert not np.allclose(parts, total["q75"].values)


def test_interval_names():
    assert interval_columns(0.9) == ("q05", "q95")
    assert interval_columns(0.8) == ("q10", "q90")
    with pytest.raises(ValueError):
        bm.summarize_array(xr.DataArray(np.ones((1, 3)), dims=("chain", "draw")), prob=1.5)
