"""Sensitivity without refitting, refit sweeps, scenarios, predictive checks, executors, SBC."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmfa as bm
from bayesmfa.analysis import balance, criticism, powerscaling, scenarios
from bayesmfa.analysis import sensitivity as sens
from bayesmfa.analysis.executors import LocalExecutor, read_dataset, run_tasks
from bayesmfa.core.priors import priors_from_dict
from bayesmfa.drivers import sensitivityrun

ROOT = Path(__file__).resolve().parents[1]
HAS_DASK = importlib.util.find_spec("distributed") is not None


# ---------------------------------------------------------------------------- power-scaling


def test_cjs_distance_is_zero_for_equal_weights_and_grows_with_tilt():
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    assert powerscaling.cjs_distance(x, np.full(x.size, 1 / x.size)) == pytest.approx(0.0, abs=1e-6)
    small = np.exp(0.05 * x)
    large = np.exp(1.0 * x)
    assert 0 < powerscaling.cjs_distance(x, small / small.sum()) < powerscaling.cjs_distance(x, large / large.sum()) <= 1


def test_log_terms_cover_every_prior_section_and_record_group(demo_fit, demo_problem):
    lp = powerscaling.log_prior_by_section(demo_fit, demo_problem)
    assert set(lp) == {"inputs", "steps", "shares", "yields", "noise", "factors"}
    ll = powerscaling.log_likelihood_by_group(demo_fit, demo_problem)
    assert set(ll) == set(demo_problem.records.source_types)
    total = demo_fit.log_likelihood["records"].sum("obs")
    np.testing.assert_allclose(sum(ll.values()).values, total.values)


def _narrow_yield_problem(problem: bm.Problem) -> bm.Problem:
    """The demo with a very narrow, off-target refining yield prior (0.6 +- 0.005; the truth is ~0.9)."""
    doc = {
        "yields": [{"process": "refining", "dist": "Beta", "alpha": 6000, "beta": 4000, "source": "test: dominant"}],
    }
    entries = dict(problem.priors.entries)
    entries["yields"] = priors_from_dict(doc).entries["yields"]
    priors = bm.Priors(entries=entries, text=problem.priors.text + "\n# narrow yields")
    return bm.make_problem(problem.system, priors, problem.records.table.drop(columns=["file", "row"]))


QS = {
    "yield": lambda d: d["yield"],
    "external_mining_2010": lambda d: d["external_mining"].isel(year=0),
}


def test_power_scaling_flags_a_dominant_prior_but_not_a_weak_one(demo_problem):
    problem = _narrow_yield_problem(demo_problem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(problem, draws=150, tune=200, chains=2, seed=5)
    ps = powerscaling.power_scaling(idata, problem, QS)
    assert {"component", "group", "quantity", "sensitivity", "pareto_k", "flag"} <= set(ps.columns)
    yields = ps[(ps["component"] == "prior") & (ps["group"] == "yields") & (ps["quantity"] == "yield")]
    assert len(yields) == 2 and yields["flag"].all(), yields
    assert (yields["sensitivity"] > 0.05).all()
    # the weak inputs prior (one order of magnitude either way) does not control mining: the records do
    inputs = ps[(ps["component"] == "prior") & (ps["group"] == "inputs") & (ps["quantity"] == "external_mining_2010")]
    assert len(inputs) == 2 and not inputs["flag"].any(), inputs
    # the narrow prior fights the production records: both sides are sensitive
    diag = ps[(ps["group"] == "all") & (ps["component"] == "prior") & (ps["quantity"] == "yield")]["diagnosis"]
    assert (diag == "prior-data conflict").any()


def test_power_scaling_groups_filter_and_likelihood_by_group(demo_fit, demo_problem):
    ps = powerscaling.power_scaling(demo_fit, demo_problem, QS, groups=["likelihood:production", "prior:inputs"])
    assert set(zip(ps["component"], ps["group"])) == {("likelihood", "production"), ("prior", "inputs")}
    prod = ps[(ps["group"] == "production") & (ps["quantity"] == "external_mining_2010")]
    # mining is recorded by production statistics: the likelihood of that group matters
    assert (prod["sensitivity"] > 0.05).all()


# ---------------------------------------------------------------------------- sweeps


def test_scale_prior_widths_multiplies_sigma_and_sd_logit_only(demo_problem):
    wide = sens.scale_prior_widths(demo_problem.priors, 2.0)
    for section, entries in demo_problem.priors.entries.items():
        for old, new in zip(entries, wide.entries[section]):
            if old.dist is not None:
                for (k, v), (k2, v2) in zip(old.dist.params, new.dist.params):
                    assert k == k2 and v2 == pytest.approx(v * 2 if k == "sigma" else v)
            if old.get("sd_logit") is not None:
                assert new.get("sd_logit") == pytest.approx(2 * old.get("sd_logit"))
    assert demo_problem.priors.entries["inputs"][0].dist.kwargs["sigma"] == 1.0  # original untouched
    assert wide.text != demo_problem.priors.text


def test_scale_step_priors_multiplies_the_step_median_or_value(demo_problem):
    faster = sens.scale_step_priors(demo_problem.priors, 2.0)
    for old, new in zip(demo_problem.priors.entries["steps"], faster.entries["steps"]):
        assert new.dist.median() == pytest.approx(2 * old.dist.median())
        if old.dist.dist == "LogNormal":  # the spread is kept
            assert new.dist.kwargs["sigma"] == old.dist.kwargs["sigma"]
    fixed = bm.priors_from_dict({"steps": [{"target": "share", "dist": "Fixed", "value": 0.5, "source": "t"}]})
    assert sens.scale_step_priors(fixed, 3.0).entries["steps"][0].dist.kwargs["value"] == pytest.approx(1.5)
    assert faster.entries["inputs"] == demo_problem.priors.entries["inputs"]
    with pytest.raises(ValueError, match="positive"):
        sens.scale_step_priors(fixed, 0.0)
    p, _ = sens.step_multiplier(2.0).modify(demo_problem, bm.ModelOptions())
    assert p.content_hash() != demo_problem.content_hash()


def test_builtin_sweeps_modify_problem_and_options(demo_problem):
    opts = bm.ModelOptions()
    p, o = sens.drop_group("customs").modify(demo_problem, opts)
    assert "customs" not in p.records.source_types and p.records.n_obs == demo_problem.records.n_obs - 80
    assert sens.noise_multiplier(2).modify(demo_problem, opts)[1].noise_scale == 2.0
    assert sens.likelihood_sweep("studentt").modify(demo_problem, opts)[1].likelihood == "studentt"
    names = [s.name for s in sens.leave_one_out(demo_problem)]
    assert names == ["drop_source_type_customs", "drop_source_type_production", "drop_source_type_survey"]
    assert [s.name for s in sens.leave_one_out(demo_problem, "family")] == ["drop_family_records"]


SWEEP_QS = {
    "flow_ore_trade": lambda d: d["flow_ore_trade"].sum("year"),
    "mining": lambda d: d["output_mining"].sum("year"),
}


def test_dropping_the_only_trade_records_widens_trade_intervals(demo_fit, demo_problem, tmp_path):
    # reuse the session fit as the baseline: run_sweep skips sweeps already on disk
    sens.sweep_summary(demo_fit, SWEEP_QS).pipe(lambda ds: ds.to_netcdf(tmp_path / "baseline.nc", engine="h5netcdf"))
    fit_kwargs = {"draws": 150, "tune": 200, "chains": 2, "seed": 3}
    ds, table = sens.run_sweep(demo_problem, [sens.drop_group("customs")], SWEEP_QS, fit_kwargs=fit_kwargs, out_dir=tmp_path)
    assert list(ds["sweep"].values) == ["baseline", "drop_source_type_customs"]
    assert {"sweep", "quantity", "origin", "destination", "mean", "q05", "q50", "q95", "shift_in_sd", "width_ratio"} <= set(table)
    trade = table[(table["sweep"] == "drop_source_type_customs") & (table["quantity"] == "flow_ore_trade")].dropna(subset=["width_ratio"])
    assert len(trade) == 2  # A->B and B->A (a region's trade with itself is structurally zero)
    assert (trade["width_ratio"] > 1).all(), trade
    for name in ("baseline.nc", "drop_source_type_customs.nc", "sweeps.nc", "sweeps.csv"):
        assert (tmp_path / name).exists()
    base = table[table["sweep"] == "baseline"]
    np.testing.assert_allclose(base["width_ratio"].dropna(), 1.0)
    # a rerun refits nothing and gives the same table
    ds2, table2 = sens.run_sweep(demo_problem, [sens.drop_group("customs")], SWEEP_QS, fit_kwargs={"draws": -1}, out_dir=tmp_path)
    pd.testing.assert_frame_equal(table, table2)


def test_sweep_statistics_honour_prob(demo_fit):
    ds = sens.sweep_summary(demo_fit, SWEEP_QS, prob=0.8)
    assert [str(s) for s in ds["stat"].values] == ["mean", "sd", "q10", "q50", "q90"]
    name = next(iter(SWEEP_QS))
    draws = SWEEP_QS[name](demo_fit.posterior).stack(sample=("chain", "draw")).transpose(..., "sample").values
    for stat, level in (("q10", 0.1), ("q50", 0.5), ("q90", 0.9)):
        np.testing.assert_allclose(ds[name].sel(stat=stat).values, np.quantile(draws, level, axis=-1), rtol=1e-12)
    # a sweep that moved every quantity by +1 sd of the baseline, with intervals twice as wide
    moved = ds.copy(deep=True)
    for var in moved.data_vars:
        v = ds[var].transpose("stat", ...).values  # mean, sd, q10, q50, q90
        moved[var] = ds[var].transpose("stat", ...).copy(data=np.stack([v[0] + v[1], v[1], v[3] + 2 * (v[2] - v[3]), v[3],
                                                                         v[3] + 2 * (v[4] - v[3])]))
    both = xr.concat([ds, moved], dim=pd.Index(["baseline", "moved"], name="sweep"))
    table = sens.sweep_table(both)
    assert {"q10", "q90"} <= set(table) and not {"q05", "q95"} & set(table)
    row = table[table["sweep"] == "moved"].dropna(subset=["width_ratio"])
    np.testing.assert_allclose(row["width_ratio"], 2.0, rtol=1e-9)
    np.testing.assert_allclose(row["shift_in_sd"].dropna(), 1.0, rtol=1e-9)


# ---------------------------------------------------------------------------- scenarios


def _check_balance(ds: xr.Dataset, problem: bm.Problem) -> None:
    g = problem.graph
    flows, thr = ds["flows"].values, ds["throughput"].values
    np.testing.assert_allclose(ds["external"].values + flows @ g.target_matrix, thr, rtol=1e-9, atol=1e-9)
    sinks = np.array([n.process in g.system.sinks for n in g.nodes])
    outflow = flows @ g.source_matrix
    output = thr - ds["loss"].values
    np.testing.assert_allclose(outflow[..., ~sinks], output[..., ~sinks], rtol=1e-9, atol=1e-9)
    assert (flows >= -1e-12).all()


def test_no_trade_balances_and_keeps_world_consumption_up_to_yields(demo_fit, demo_problem):
    ds = scenarios.no_trade(demo_fit, demo_problem)
    _check_balance(ds, demo_problem)
    crossed = [i for i, e in enumerate(demo_problem.graph.edges) if "origin" in dict(e.coords)]
    assert np.abs(ds["flows"].values[..., crossed]).max() == 0
    world = ds["consumption"].sum("region")
    base = ds["baseline_consumption"].sum("region")
    # everything mined still ends in use, less the losses of refining (with each region's own yield)
    np.testing.assert_allclose(world + ds["loss"].sum("node"), ds["external"].sum("node"), rtol=1e-9)
    yields = demo_fit.posterior["yield"]
    spread = float((yields.max("yield_node") - yields.min("yield_node")).max())
    assert float(np.abs(world / base - 1).max()) <= spread + 1e-9
    summary = scenarios.summarize_scenario(ds)
    assert {"consumption", "change"} <= set(summary["quantity"]) and {"q05", "q95"} <= set(summary.columns)


def test_export_restriction_caps_exports_from_the_year_on(demo_fit, demo_problem):
    ds = scenarios.export_restriction(demo_fit, demo_problem, region="A", flow_names=["ore_trade"], cap_share=0.5, from_year=2015)
    _check_balance(ds, demo_problem)
    g = demo_problem.graph
    e = next(e.index for e in g.edges if e.flow == "ore_trade" and dict(e.coords)["origin"] == "A")
    base = balance.edge_values(demo_fit.posterior, g)[..., e]
    after = np.array(g.system.years) >= 2015
    np.testing.assert_allclose(ds["flows"].values[..., after, e], 0.5 * base[..., after])
    np.testing.assert_allclose(ds["flows"].values[..., ~after, e], base[..., ~after])
    np.testing.assert_allclose(ds["change"].sel(year=2012).values, 0.0, atol=1e-9)
    change = ds["change"].sel(year=2018)
    assert float(change.sel(region="A").mean()) > 0 > float(change.sel(region="B").mean())
    with pytest.raises(ValueError):
        scenarios.export_restriction(demo_fit, demo_problem, region="A", flow_names=["nope"], cap_share=0.5, from_year=2015)


# ---------------------------------------------------------------------------- criticism


def test_predictive_checks_per_source_type(demo_fit, demo_problem, tmp_path):
    checks = criticism.predictive_checks(demo_fit, demo_problem, seed=1)
    assert set(checks["group"]) == set(demo_problem.records.source_types)
    assert set(checks["statistic"]) == {"mean_log_residual", "max_abs_z"}
    # the demo records were simulated from the model: no group's mean residual is off in the posterior check
    post = checks[checks["check"] == "posterior"].set_index(["group", "statistic"])
    assert not post.xs("mean_log_residual", level="statistic")["flag"].any(), post
    # the same draws checked against customs records three times larger (log + 1.1): that group, and only that one, is flagged
    import copy

    shifted = copy.deepcopy(demo_fit)
    groups = powerscaling.record_groups(demo_problem, "source_type")
    for name, dim in powerscaling.OBSERVED:
        if name in shifted.observed_data:
            da = shifted.observed_data[name]
            member = groups.reindex(da[dim].values.astype(str)).to_numpy()
            shifted.observed_data[name] = da + np.where(member == "customs", np.log(3.0), 0.0)
    moved = criticism.predictive_checks(shifted, demo_problem, seed=1, groups=("posterior",)).set_index(["group", "statistic"])
    residual = moved.xs("mean_log_residual", level="statistic")
    assert residual.loc["customs", "p_value"] < 0.01 and residual.loc["customs", "observed"] > 0.5  # log(3) = 1.1
    assert not residual.drop(index="customs")["flag"].any()
    fig = criticism.plot_predictive_checks(checks, tmp_path / "ppc.png")
    assert (tmp_path / "ppc.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_value_of_information_reports_pareto_k(demo_fit, demo_problem):
    voi = criticism.value_of_information(demo_fit, demo_problem, SWEEP_QS)
    assert set(voi["group"]) == set(demo_problem.records.source_types)
    assert {"narrowing", "max_narrowing", "pareto_k", "reliable"} <= set(voi.columns)
    assert list(voi["narrowing"]) == sorted(voi["narrowing"], reverse=True)
    assert (voi["reliable"] == (voi["pareto_k"] < powerscaling.k_threshold(300))).all()


# ---------------------------------------------------------------------------- executors


def _ok(x: int) -> xr.Dataset:
    return xr.Dataset({"v": ("i", [x, x * 2])})


class _Flaky:
    """Fails on the first call for item 'flaky' (state in a marker file), always for 'bad'."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, item: str) -> xr.Dataset:
        if item == "bad":
            raise RuntimeError("always fails")
        if item == "flaky" and not self.marker.exists():
            self.marker.write_text("tried")
            raise RuntimeError("fails once")
        return _ok(len(item))


def _check_report(report, out: Path) -> None:
    assert set(report.results) == {"good", "flaky"}
    assert "bad" in report.failed and "always fails" in report.failed["bad"]
    assert (out / "good.nc").exists() and (out / "flaky.nc").exists() and not (out / "bad.nc").exists()
    assert (out / "failures.json").exists()
    np.testing.assert_array_equal(read_dataset(out / "flaky.nc")["v"].values, [5, 10])


def test_local_executor_workers_are_not_forked_from_this_process():
    from bayesmfa.analysis.executors import _worker_context

    assert _worker_context().get_start_method() in ("forkserver", "spawn")


@pytest.mark.parametrize("workers", [1, 2])
def test_local_executor_retries_and_reports(tmp_path, workers):
    out = tmp_path / "out"
    fn = _Flaky(tmp_path / "marker")
    report = run_tasks(fn, {"good": "good", "flaky": "flaky", "bad": "bad"}, out, executor=LocalExecutor(workers, retries=1))
    _check_report(report, out)
    again = run_tasks(fn, {"good": "good", "flaky": "flaky"}, out, executor=LocalExecutor(1, retries=0))
    assert sorted(again.skipped) == ["flaky", "good"] and not again.failed


@pytest.mark.skipif(not HAS_DASK, reason="dask.distributed is not installed")
def test_dask_executor_retries_and_keeps_finished_results(tmp_path):
    from distributed import LocalCluster

    from bayesmfa.analysis.executors import DaskExecutor

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with DaskExecutor(cluster.scheduler_address, retries=1) as ex:
            out = tmp_path / "out"
            report = run_tasks(_Flaky(tmp_path / "marker"), {"good": "good", "flaky": "flaky", "bad": "bad"}, out, executor=ex)
    _check_report(report, out)


@pytest.mark.slow
def test_run_sensitivity_demo_quick(tmp_path):
    out = sensitivityrun.run_sensitivity("demo", tmp_path / "sens", quick=True, seed=1, root=ROOT)
    for name in ("sweeps.nc", "sweeps.csv", "power_scaling.csv", "predictive_checks.csv", "key_sensitivity.png",
                 "scenarios/scenarios.csv", "scenarios/no_trade.png"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "sweeps.csv")
    assert {"baseline", "noise_x2", "prior_width_x2", "likelihood_studentt", "drop_source_type_customs"} <= set(table["sweep"])


def test_run_sensitivity_refuses_unknown_sweeps_and_foreign_baselines_before_fitting(demo_fit, tmp_path, capsys):
    from bayesmfa.drivers.cli import main

    with pytest.raises(ValueError, match=r"unknown sweeps \['nope'\].*noise_x2"):
        sensitivityrun.run_sensitivity("demo", tmp_path / "a", only=["nope"], root=ROOT)
    other = demo_fit.copy()
    other.posterior.attrs["content_hash"] = "0" * 64
    bm.save(other, tmp_path / "fit" / "posterior.nc")
    rc = main(["sensitivity", "demo", "--out", str(tmp_path / "b"), "--baseline", str(tmp_path / "fit"), "--only", "noise_x2",
               "--root", str(ROOT)])
    assert rc == 2 and "different inputs" in capsys.readouterr().err
    rc = main(["sensitivity", "demo", "--out", str(tmp_path / "c"), "--baseline", str(tmp_path / "none"), "--root", str(ROOT)])
    assert rc == 2 and "no baseline fit" in capsys.readouterr().err


@pytest.mark.slow
def test_run_sensitivity_only_some_sweeps_on_a_saved_baseline(demo_fit, tmp_path):
    bm.save(demo_fit, tmp_path / "fit" / "posterior.nc")
    out = sensitivityrun.run_sensitivity("demo", tmp_path / "sens", quick=True, seed=1, root=ROOT, only=["noise_x2"],
                               baseline=tmp_path / "fit")
    table = pd.read_csv(out / "sweeps.csv")
    assert set(table["sweep"]) == {"baseline", "noise_x2"}
    # the baseline is the saved fit, not a refit: its summary equals the one computed from that fit
    plan = sens.default_plan(bm.load_case("demo", ROOT))
    expected = sens.sweep_summary(demo_fit, {**plan.quantities, "key": plan.key})
    got = xr.open_dataset(out / "sweeps.nc").sel(sweep="baseline")
    np.testing.assert_allclose(got["key"].values, expected["key"].values)
    # doubling every record's noise does not narrow the key interval beyond Monte Carlo error: the demo's noise
    # scales are learned, so they absorb most of the doubling (the prior only pulls them back a little), and a
    # quick refit's width is noisy by a few per cent (0.998 measured with seed 1 after the softmax moved into
    # the kernel, > 1 before)
    width = table[table["quantity"] == "key"].set_index("sweep")["width_ratio"]
    assert width["noise_x2"] > 0.95


def test_sweep_refits_draw_no_prior(monkeypatch, demo_problem, demo_fit):
    """A sweep's refit keeps only its quantities' statistics, so it skips the prior draws a full fit makes."""
    from bayesmfa.analysis.sensitivity import Sweep, _identity, _SweepTask
    from bayesmfa.inference import sampling as inference

    seen = {}

    def fake_fit(problem, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.update(kwargs)
        return demo_fit

    monkeypatch.setattr(inference, "fit", fake_fit)
    task = _SweepTask(demo_problem, bm.ModelOptions(), {"noise": lambda post: post["noise"]}, {"draws": 10})
    ds = task(Sweep("same", _identity))
    assert seen["prior_draws"] == 0 and seen["draws"] == 10
    assert ds.attrs["sweep"] == "same"


def test_analyses_use_the_fits_options_and_refuse_others(demo_fit, demo_problem):
    """Predictive checks and power-scaling rebuild the model: with the fit's options, never silently with others."""
    from dataclasses import replace as dc_replace

    from bayesmfa.inference.io import fit_options, stored_options

    own = stored_options(demo_fit)
    assert fit_options(demo_fit) == own and fit_options(demo_fit, own) == own
    other = dc_replace(own, likelihood="studentt")
    with pytest.raises(ValueError, match=r"\['likelihood'\] differ from those the fit was made with"):
        criticism.predictive_checks(demo_fit, demo_problem, seed=0, options=other)
    with pytest.raises(ValueError, match="differ from those the fit was made with"):
        powerscaling.power_scaling(demo_fit, demo_problem, QS, options=other)
