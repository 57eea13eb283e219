"""Process groups: ``groups:`` in the system, one quantity in records, in the fit and in summary.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import bayesmfa as bm
from bayesmfa.core.datacheck import check_data
from bayesmfa.drivers.starter import init_case
from bayesmfa.errors import SpecError


def _with_groups(folder: Path, groups: dict) -> Path:
    doc = yaml.safe_load((folder / "system.yaml").read_text())
    doc["groups"] = groups
    (folder / "system.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    folder = _with_groups(init_case(tmp_path / "g"), {"primary": {"processes": ["mining", "refining"],
                                                                  "description": "mines and refineries"}})
    records = pd.read_csv(folder / "records.csv", dtype=str).fillna("")
    extra = {c: "" for c in records.columns} | {"quantity": "primary", "region": "north", "year": "2016-2018", "value": "700",
                                                "unit": "kt", "source_type": "survey", "source": "a sector total"}
    pd.concat([records, pd.DataFrame([extra])]).to_csv(folder / "records.csv", index=False)
    return folder


def test_a_group_record_sums_the_members_outputs(grouped):
    problem = bm.load_case(grouped)
    rec = problem.records
    row = rec.numerator.tocsr()[len(rec.value) - 1]
    state_cols = set(row.indices)
    direct = bm.compile_records(pd.DataFrame([
        {"quantity": "mining + refining", "region": "north", "year": "2016-2018", "value": "700", "unit": "kt",
         "source_type": "survey", "source": "x"}]), problem.graph)
    assert state_cols == set(direct.numerator.tocsr()[0].indices) and len(state_cols) == 6  # 2 processes x 3 years
    assert check_data(grouped) == []  # the data check knows the group's name


@pytest.mark.filterwarnings("ignore::bayesmfa.inference.diagnostics.ConvergenceWarning")  # a short Laplace fit: only the arrays matter
def test_group_arrays_are_the_sums_of_their_members_in_every_draw(grouped):
    problem = bm.load_case(grouped)
    idata = bm.fit(problem, method="laplace", draws=200, chains=2, seed=0, prior_draws=0)
    post = idata.posterior
    np.testing.assert_allclose(post["output_primary"], post["output_mining"] + post["output_refining"], rtol=1e-12)
    np.testing.assert_allclose(post["input_primary"], post["input_mining"] + post["input_refining"], rtol=1e-12)
    table = bm.get_case(grouped).summary_table(idata, problem, 0.9)
    rows = table[table["quantity"] == "output_primary"]
    assert len(rows) == 2 * len(problem.system.years)
    assert "`mining`, `refining`" in rows["description"].iloc[0]


@pytest.mark.parametrize(("groups", "message"), [
    ({"g": {"processes": ["mining", "nowhere"]}}, "unknown process"),
    ({"g": {"processes": []}}, "non-empty list"),
    ({"mining": {"processes": ["use"]}}, "already a process"),
    ({"g": {"processes": ["mining", "mining"]}}, "listed twice"),
    ({"g": {"processes": ["mining"], "colour": "red"}}, "unknown keys"),
])
def test_bad_groups_name_the_field(tmp_path, groups, message):
    folder = _with_groups(init_case(tmp_path / "bad"), groups)
    with pytest.raises(SpecError, match=message) as err:
        bm.load_system(folder / "system.yaml")
    assert str(err.value.field).startswith("groups.")


def test_a_group_of_processes_with_different_dims_is_refused():
    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "demo" / "system.yaml").read_text())
    doc["groups"] = {"downstream": ["use", "final"]}  # dims [region] and [region, end_use]
    with pytest.raises(SpecError, match="same dims") as err:
        bm.system_from_dict(doc)
    assert err.value.field == "groups.downstream.processes"
