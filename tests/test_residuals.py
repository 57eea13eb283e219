"""Record-level criticism: residuals of records simulated from known truth look standard normal;
a planted outlier, a violated cap and a planted conflicting pair are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm
from bayesmfa.analysis.residuals import CONFLICT_Z, KEY_COLUMNS, MISFIT_Z, _conflicts, check_records
from bayesmfa.inference.simulate import resimulated_problem


@pytest.fixture(scope="module")
def planted(demo_problem):
    """Demo records simulated from a prior draw, plus an outlier, a conflicting pair and a violated cap."""
    _, records = bm.simulate_records(demo_problem, seed=404, noise=0.05)
    records = records.drop(columns=["file", "row"], errors="ignore").reset_index(drop=True)
    # one planted problem per record family, so that none inflates the learned noise of another
    trade = records.index[records["quantity"] == "ore_trade"]
    outlier = trade[3]  # customs
    records.loc[outlier, "value"] = f"{float(records.loc[outlier, 'value']) * 10:.6g}"
    use = records.loc[records.index[records["quantity"] == "use"][7]]  # survey
    high, low = use.copy(), use.copy()
    high["value"] = f"{float(use['value']) * 3:.6g}"
    low["value"] = f"{float(use['value']) / 3:.6g}"
    measured = records.index[records["quantity"] == "mining"][11]  # production
    cap = records.loc[measured].copy()
    cap["value"] = f"{float(cap['value']) / 1.9:.6g}"
    cap["bound"] = "upper"
    records["bound"] = records.get("bound", "")
    records = pd.concat([records, pd.DataFrame([high, low, cap])], ignore_index=True).fillna("")
    n = len(records)
    records["record_id"] = [f"{q}:{i}" for i, q in enumerate(records["quantity"])]  # "table:line"-like ids
    problem = resimulated_problem(demo_problem, records)
    idata = bm.fit(problem, draws=300, tune=400, chains=2, seed=5)
    rid = records["record_id"]
    planted_ids = {rid[outlier], rid[measured]}
    ids = {"outlier": rid[outlier], "high": rid[n - 3], "low": rid[n - 2], "cap": rid[n - 1], "measured": rid[measured],
           "plain": set(rid[: n - 3]) - planted_ids}
    return problem, idata, check_records(idata, problem, seed=1, by="source_type"), ids


def test_residuals_of_records_from_known_truth_are_near_standard(planted):
    _, _, checks, ids = planted
    plain = checks.records[checks.records["record_id"].isin(ids["plain"]) & (checks.records["bound"] == "")]
    z = plain["z"].to_numpy()
    assert np.isfinite(z).all()
    assert abs(np.mean(z)) < 0.5, np.mean(z)
    assert np.std(z) < 1.5, np.std(z)
    assert (np.abs(z) > MISFIT_Z).mean() <= 0.03
    # predictive p-values of well-specified records are not piled up near 0
    assert (plain["p_value"] < 0.05).mean() < 0.15


def test_a_planted_outlier_is_the_worst_misfit(planted):
    _, _, checks, ids = planted
    worst = checks.misfits.iloc[0]
    assert worst["record_id"] == ids["outlier"]
    assert worst["z"] > MISFIT_Z
    assert worst["model_q95"] < worst["observed"]


def test_a_cap_below_a_measurement_is_a_misfit_and_pulls_the_fit_below_the_measurement(planted):
    _, _, checks, ids = planted
    table = checks.records.set_index("record_id")
    cap, measured = table.loc[ids["cap"]], table.loc[ids["measured"]]
    assert cap["bound"] == "upper"
    assert cap["z"] < -MISFIT_Z and bool(cap["misfit"])  # the fit lies above the cap
    assert measured["z"] > 0  # the cap pulls the fit below the measurement (other records keep it near)


def test_records_of_one_quantity_missed_on_both_sides_are_named_as_conflicting(planted):
    _, _, checks, ids = planted
    pairs = set(zip(checks.conflicts["record_id_high"], checks.conflicts["record_id_low"], strict=True))
    assert (ids["high"], ids["low"]) in pairs
    row = checks.conflicts[checks.conflicts["record_id_high"] == ids["high"]].iloc[0]
    assert row["log_ratio"] == pytest.approx(np.log(9), rel=1e-4)


def test_family_checks_count_misfits_and_flag_the_biased_family(planted):
    _, _, checks, _ = planted
    fams = checks.families.set_index("family")
    assert int(fams["n_records"].sum()) == len(checks.records)
    assert int(fams["n_misfit"].sum()) == int(checks.records["misfit"].sum())
    assert fams.loc["customs", "n_misfit"] >= 1  # the outlier
    assert fams.loc["production", "n_misfit"] >= 1  # the cap



def test_families_default_to_the_table_in_the_record_id(planted):
    problem, idata, _, _ = planted
    checks = check_records(idata, problem, seed=1, max_draws=50)
    assert set(checks.families["family"]) == set(problem.records.table["quantity"])
    assert int(checks.families["n_records"].sum()) == len(problem.records.table)


def test_record_files_are_relative_to_their_folder(demo_problem, demo_fit):
    """A shared record_checks.csv names the record tables, not the paths of the machine the fit ran on."""
    checks = check_records(demo_fit, demo_problem, seed=0, max_draws=20)
    files = checks.records["file"]
    assert len(files) == demo_problem.records.n_obs and (files != "").all()
    assert not any(Path(f).is_absolute() for f in files)
    full = demo_problem.records.table["file"].astype(str)
    assert all(Path(a).name == Path(b).name for a, b in zip(full, files, strict=True))


def _reference_log_ratio(high: float, low: float) -> float:
    with np.errstate(divide="ignore"):  # a zero record: log(0) = -inf, as the library says it explicitly
        return float(np.log(high / low)) if low > 0 else np.inf


def _conflicts_one_group_at_a_time(out: pd.DataFrame) -> pd.DataFrame:
    """The pairs as first written: every measured quantity's records split into high and low, pair by pair."""
    meas = out[(out["bound"] == "") & np.isfinite(out["z"])]
    rows = []
    for _, grp in meas.groupby(list(KEY_COLUMNS), sort=False):
        for _, h in grp[grp["z"] > CONFLICT_Z].iterrows():
            for _, lo in grp[grp["z"] < -CONFLICT_Z].iterrows():
                rows.append({"quantity": h["quantity"], "year": h["year"], "record_id_high": h["record_id"],
                             "observed_high": h["observed"], "z_high": h["z"], "record_id_low": lo["record_id"],
                             "observed_low": lo["observed"], "z_low": lo["z"],
                             "log_ratio": _reference_log_ratio(h["observed"], lo["observed"]),
                             "model_q50": h["model_q50"]})
    return pd.DataFrame(rows, columns=_conflicts(out).columns)


def test_conflicts_list_the_pairs_in_the_order_of_the_quantities_first_records():
    """Only records missed beyond CONFLICT_Z are paired, but the quantities come in the order of their first
    measurement (missed or not), as a groupby over every measurement gives them; bounds and NaN z never pair."""
    rng = np.random.default_rng(8)
    n = 400
    out = pd.DataFrame({c: "" for c in KEY_COLUMNS}, index=range(n))
    out["quantity"] = rng.choice(["mining", "refining", "use", "trade"], n)
    out["year"] = rng.choice(["2010", "2011", "2012"], n).astype(str)
    out["record_id"] = [f"r:{i}" for i in range(n)]
    out["bound"] = np.where(rng.random(n) < 0.1, "upper", "")
    out["z"] = np.where(rng.random(n) < 0.05, np.nan, rng.normal(scale=2.0, size=n))
    out["observed"] = rng.lognormal(size=n) * (rng.random(n) > 0.05)
    out["model_q50"] = rng.lognormal(size=n)
    expected = _conflicts_one_group_at_a_time(out)
    assert len(expected) > 20
    pd.testing.assert_frame_equal(_conflicts(out), expected)
