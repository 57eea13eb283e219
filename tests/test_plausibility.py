"""Plausibility checks run when a problem is made: contradictory or absurd inputs are errors or listed warnings."""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, TINY_PRIORS, TINY_SYSTEM, three_region_system, tiny_records

import bayesmfa as bm
from bayesmfa.core.plausibility import PlausibilityError, PlausibilityWarning

MINING_A = {"quantity": "mining", "region": "A", "year": "2000", "unit": "kt", "source_type": "stats", "source": "t"}


def _write(tmp_path: Path, df: pd.DataFrame) -> Path:
    path = tmp_path / "records.csv"
    df.fillna("").to_csv(path, index=False)
    return path


def _problem(tmp_path: Path, rows: list[dict], priors: dict | None = None, system: dict | None = None) -> bm.Problem:
    """The tiny problem with ``rows`` appended to its records (written to and read from ``records.csv``)."""
    df = pd.concat([tiny_records(), pd.DataFrame(rows)], ignore_index=True)
    path = _write(tmp_path, df)
    return bm.make_problem(bm.system_from_dict(system or TINY_SYSTEM), bm.priors_from_dict(priors or TINY_PRIORS, file="p.yaml"),
                           bm.read_records(path))


def _located(err: bm.LocatedError, tmp_path: Path, row: int, field: str) -> str:
    text = str(err)
    assert str(tmp_path / "records.csv") in text
    assert err.row == row and re.search(rf"\bline {row}\b", text)
    assert err.field == field and f"field '{field}'" in text
    assert "\n" not in text
    return text


# ----------------------------------------------------------------------------- bounds


def test_lower_bound_above_upper_bound_is_an_error(tmp_path):
    rows = [{**MINING_A, "year": "2002", "value": "100", "bound": "lower"}, {**MINING_A, "year": "2002", "value": "10", "bound": "upper"}]
    with pytest.raises(PlausibilityError) as err:
        _problem(tmp_path, rows)
    text = _located(err.value, tmp_path, 7, "bound")  # tiny records are lines 2-5; the bounds lines 6 and 7
    assert "lower bound 100 kt is above upper bound 10 kt" in text and "line 6" in text


def test_upper_bound_far_below_a_measurement_is_an_error(tmp_path):
    with pytest.raises(PlausibilityError) as err:
        _problem(tmp_path, [{**MINING_A, "value": "4", "bound": "upper"}])  # line 2 measures 10 kt
    text = _located(err.value, tmp_path, 6, "value")
    assert "upper bound 4 kt is below the measurement 10 kt" in text and "line 2" in text


def test_lower_bound_far_above_a_measurement_is_an_error(tmp_path):
    with pytest.raises(PlausibilityError, match="lower bound 25 kt is above the measurement 10 kt") as err:
        _problem(tmp_path, [{**MINING_A, "value": "25", "bound": "lower"}])
    _located(err.value, tmp_path, 6, "value")


def test_mild_bound_tension_is_a_listed_warning(tmp_path):
    with pytest.warns(PlausibilityWarning, match="upper bound 8 kt is below the measurement 10 kt") as rec:
        problem = _problem(tmp_path, [{**MINING_A, "value": "8", "bound": "upper"}])
    assert len(problem.warnings) == 1 == len([w for w in rec if w.category is PlausibilityWarning])
    assert str(tmp_path / "records.csv") in problem.warnings[0] and "line 6" in problem.warnings[0]


def test_bound_within_noise_of_a_measurement_is_fine(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        problem = _problem(tmp_path, [{**MINING_A, "value": "9.5", "bound": "upper"}, {**MINING_A, "value": "5", "bound": "lower"}])
    assert problem.warnings == ()


def test_bounds_of_different_quantities_are_not_compared(tmp_path):
    rows = [{**MINING_A, "value": "1", "bound": "upper", "factor": "gross"},  # a gross-weight record: another quantity
            {**MINING_A, "year": "2001", "value": "100", "bound": "lower"}]
    assert _problem(tmp_path, rows).warnings == ()


# ----------------------------------------------------------------------------- shares


def _share(region: str, value: str, source: str = "one survey") -> dict:
    return {"quantity": "use", "region": region, "year": "2001", "value": value, "unit": "share", "share_of": "region",
            "source_type": "stats", "source": source}


def test_shares_of_one_denominator_from_one_source_summing_over_one(tmp_path):
    with pytest.raises(PlausibilityError) as err:
        _problem(tmp_path, [_share("A", "0.9"), _share("B", "0.9")])
    text = _located(err.value, tmp_path, 7, "value")
    assert "shares of one denominator from one source sum to 1.8" in text and "line 6" in text


def test_shares_rounded_or_from_different_sources_are_fine(tmp_path):
    assert _problem(tmp_path, [_share("A", "0.52"), _share("B", "0.52")]).warnings == ()
    assert _problem(tmp_path, [_share("A", "0.9"), _share("B", "0.9", source="another survey")]).warnings == ()


# ----------------------------------------------------------------------------- magnitudes


def test_absurd_value_is_an_error(tmp_path):
    df = tiny_records()
    df.loc[2, "value"] = "1e30"
    with pytest.raises(PlausibilityError, match="implausibly large") as err:
        bm.make_problem(bm.system_from_dict(TINY_SYSTEM), bm.priors_from_dict(TINY_PRIORS), bm.read_records(_write(tmp_path, df)))
    _located(err.value, tmp_path, 4, "value")


def test_absurd_value_in_another_unit(tmp_path):
    with pytest.raises(PlausibilityError, match="implausibly large"):
        _problem(tmp_path, [{**MINING_A, "year": "2003", "value": "2e15", "unit": "Mt"}])  # 2e18 kt
    assert _problem(tmp_path, [{**MINING_A, "year": "2003", "value": "2e8", "unit": "Mt"}]).warnings == ()


def test_measurements_a_thousand_times_apart_are_an_error(tmp_path):
    with pytest.raises(PlausibilityError) as err:
        _problem(tmp_path, [{**MINING_A, "value": "20000", "source": "u"}])  # line 2 measures 10 kt
    text = _located(err.value, tmp_path, 6, "value")
    assert "2e+03 times above the measurement 10 kt" in text and "line 2" in text


def test_outlier_among_several_measurements_is_named(tmp_path):
    rows = [{**MINING_A, "value": "0.005", "source": "u"}, {**MINING_A, "value": "12", "source": "v"}]
    with pytest.raises(PlausibilityError, match="below the measurement") as err:
        _problem(tmp_path, rows)
    assert err.value.row == 6


def test_zero_measurement_is_not_a_magnitude_error(tmp_path):
    assert _problem(tmp_path, [{**MINING_A, "value": "0", "source": "u"}]).warnings == ()


# ----------------------------------------------------------------------------- duplicates


def test_duplicated_row_is_an_error_naming_both_lines(tmp_path):
    df = tiny_records()
    df = pd.concat([df.iloc[:2], df.iloc[[1]], df.iloc[2:]], ignore_index=True)  # line 3 repeated as line 4
    df.loc[2, "unit"], df.loc[2, "value"] = "kt", "8"  # 8000 t == 8 kt: the same record
    with pytest.raises(PlausibilityError, match="duplicate of line 3") as err:
        bm.make_problem(bm.system_from_dict(TINY_SYSTEM), bm.priors_from_dict(TINY_PRIORS), bm.read_records(_write(tmp_path, df)))
    _located(err.value, tmp_path, 4, "quantity")


def test_same_record_from_another_source_is_no_duplicate(tmp_path):
    assert _problem(tmp_path, [{**MINING_A, "value": "10", "source": "another"}]).warnings == ()


# ----------------------------------------------------------------------------- priors


def _prior_error(tmp_path, priors: dict, system: dict | None = None) -> bm.PriorError:
    with pytest.raises(bm.PriorError) as err:
        _problem(tmp_path, [], priors=priors, system=system)
    assert "p.yaml" in str(err.value) and "\n" not in str(err.value)
    return err.value


def test_prior_for_an_unknown_coord_is_an_error(tmp_path):
    priors = copy.deepcopy(TINY_PRIORS)
    priors["inputs"].append({"process": "mining", "region": "Z", "dist": "LogNormal", "median": 5, "sigma": 1, "source": "t"})
    err = _prior_error(tmp_path, priors)
    assert err.field == "inputs[1].region"
    assert "coord 'Z' is not a region of system 'tiny' (known: A, B)" in str(err)


def test_prior_for_a_coord_the_process_lacks_is_an_error(tmp_path):
    system = bm.system_from_dict(three_region_system(2000, 2003))  # unregistered mining in CN only
    priors = copy.deepcopy(TINY_PRIORS)
    del priors["shares"], priors["yields"]
    priors["inputs"].append({"process": "unregistered_mining", "region": ["CN", "US"], "dist": "LogNormal", "median": 5,
                             "sigma": 1, "source": "t"})
    records = pd.DataFrame([{**MINING_A, "region": "CN"}, {**MINING_A, "region": "US"}]).assign(value="10")
    with pytest.raises(bm.PriorError) as err:
        bm.make_problem(system, bm.priors_from_dict(priors, file="p.yaml"), records)
    assert err.value.field == "inputs[1].region" and "p.yaml" in str(err.value)
    assert "process 'unregistered_mining' covers region CN only, not 'US'" in str(err.value)


def test_prior_for_a_process_of_the_wrong_kind_is_an_error(tmp_path):
    priors = copy.deepcopy(TINY_PRIORS)
    priors["yields"].append({"process": "use", "dist": "Beta", "alpha": 2, "beta": 2, "source": "t"})
    err = _prior_error(tmp_path, priors)
    assert err.field == "yields[1].process" and "process 'use' has no node with a yield" in str(err)


def test_prior_selector_on_a_dim_the_process_lacks(tmp_path):
    system = copy.deepcopy(TINY_SYSTEM)
    system["dims"]["grade"] = ["high", "low"]
    system["processes"]["use"]["dims"] = ["region", "grade"]
    system["processes"]["sink"] = {"dims": ["region", "grade"]}
    system["boundary"]["sinks"] = ["sink"]
    system["flows"]["final"] = {"from": "use", "to": "sink"}
    priors = copy.deepcopy(TINY_PRIORS)
    priors["shares"].append({"process": "mining", "grade": "high", "sd_logit": 1, "source": "t"})
    err = _prior_error(tmp_path, priors, system)
    assert err.field == "shares[1].grade" and "process 'mining' has no dim 'grade'" in str(err)


def test_generic_defaults_may_match_nothing(tmp_path):
    priors = copy.deepcopy(TINY_PRIORS)
    priors["yields"].insert(0, {"dist": "Beta", "alpha": 2, "beta": 2, "source": "default"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _problem(tmp_path, [], priors=priors).warnings == ()


def test_overridden_prior_entry_is_a_listed_warning(tmp_path):
    priors = copy.deepcopy(TINY_PRIORS)
    priors["inputs"].insert(0, {"process": "mining", "region": "A", "dist": "LogNormal", "median": 5, "sigma": 1, "source": "t"})
    with pytest.warns(PlausibilityWarning, match=r"p.yaml field 'inputs\[0\]': never used"):
        problem = _problem(tmp_path, [], priors=priors)
    assert len(problem.warnings) == 1 and "inputs[1]" in problem.warnings[0]


def test_misspelt_noise_prior_next_to_a_default_is_a_warning(tmp_path):
    priors = copy.deepcopy(TINY_PRIORS)
    priors["noise"] = [{"source_type": "*", "dist": "HalfNormal", "sigma": 0.5, "source": "t"},
                       {"source_type": "stat", "dist": "HalfNormal", "sigma": 0.1, "source": "t"}]
    with pytest.warns(PlausibilityWarning, match="no record has source_type 'stat'"):
        _problem(tmp_path, [], priors=priors)


# ----------------------------------------------------------------------------- reading record files


def _records_file(tmp_path) -> tuple[Path, str]:
    path = _write(tmp_path, tiny_records())
    return path, path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("data", "row", "words"),
    [
        (lambda t: t.encode("utf-16"), 1, "UTF-16"),
        (lambda t: t.replace(",t,", ",Société,", 1).encode("latin-1"), 2, "not UTF-8"),
        (lambda t: b"", 1, "empty file"),
        (lambda t: t.splitlines()[0].encode() + b"\n", 1, "no records"),
        (lambda t: bytes(range(256)) * 4, 1, "NUL byte"),
    ],
)
def test_unreadable_record_file_is_a_one_line_error(tmp_path, data, row, words):
    path, text = _records_file(tmp_path)
    path.write_bytes(data(text))
    with pytest.raises(bm.RecordError, match=words) as err:
        bm.read_records(path)
    assert str(path) in str(err.value) and err.value.row == row and "\n" not in str(err.value)


@pytest.mark.parametrize(("extra", "words"), [(True, "cells beyond the last column"), (False, "no cell for")])
def test_ragged_row_names_the_line(tmp_path, extra, words):
    path, text = _records_file(tmp_path)
    lines = text.splitlines()
    lines[3] = lines[3] + ",surplus" if extra else lines[3].rsplit(",", 3)[0]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(bm.RecordError, match=words) as err:
        bm.read_records(path)
    assert err.value.row == 4 and str(path) in str(err.value)


@pytest.mark.parametrize(
    "variant",
    [lambda b: b"\xef\xbb\xbf" + b, lambda b: b.replace(b"\n", b"\r\n"), lambda b: b + b"\n\n"],
    ids=["bom", "crlf", "trailing-blank-line"],
)
def test_valid_variants_read_the_same_records(tmp_path, variant):
    path, _ = _records_file(tmp_path)
    plain = bm.read_records(path)
    path.write_bytes(variant(path.read_bytes()))
    pd.testing.assert_frame_equal(bm.read_records(path), plain)


def test_repeated_column_is_an_error(tmp_path):
    path, text = _records_file(tmp_path)
    path.write_text(text.replace("quantity,", "value,", 1), encoding="utf-8")
    with pytest.raises(bm.RecordError, match="more than once") as err:
        bm.read_records(path)
    assert err.value.field == "value" and err.value.row == 1


# ----------------------------------------------------------------------------- the shipped cases


#: Warnings the shipped REE records raise: genuine tensions (exports beyond China's export quota in
#: 2006 and 2010; USGS editions revising US compound trade of 2015 and 2018 below an earlier line).
REE_WARNINGS = ("china_quotas:3", "china_quotas:13", "china_quotas:14", "us_trade:77", "us_trade:86", "unregistered_estimates:8")


def test_shipped_demo_loads_without_findings():
    from bayesmfa.cases import demo

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        problem = demo.load(ROOT)
    assert problem.warnings == ()


def test_shipped_ree_loads_with_only_the_listed_warnings():
    from bayesmfa.cases import ree

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem = ree.load(ROOT)
    assert [w.category for w in caught] == [PlausibilityWarning] * len(REE_WARNINGS)
    # each names the table file and line of the record (its record id is table:line)
    ids = ["{}:{}".format(*re.match(r"\S*?(\w+)\.csv line (\d+) ", w).groups()) for w in problem.warnings]
    assert ids == list(REE_WARNINGS)
