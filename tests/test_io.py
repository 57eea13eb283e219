"""Save/load round trip, provenance check, atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmfa as bm
from bayesmfa.core.outputs import atomic_write


def test_round_trip_and_provenance(tmp_path, demo_fit, demo_problem):
    path = bm.save(demo_fit, tmp_path / "fit.nc")
    back = bm.load(path, demo_problem)
    assert set(back.groups()) >= {"posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data"}
    np.testing.assert_array_equal(back.posterior["flow_ore_trade"].values, demo_fit.posterior["flow_ore_trade"].values)
    assert back.posterior["flow_ore_trade"].dims == ("chain", "draw", "year", "origin", "destination")
    attrs = back.posterior.attrs
    assert attrs["content_hash"] == demo_problem.content_hash(bm.ModelOptions().as_dict())
    assert "name: demo" in attrs["system_yaml"] and "source_type: production" in attrs["priors_yaml"]
    assert attrs["bayesmfa_version"] == bm.__version__


def test_load_refuses_other_inputs(tmp_path, demo_fit, demo_problem):
    path = bm.save(demo_fit, tmp_path / "fit.nc")
    table = demo_problem.records.table.drop(columns=["file", "row"]).copy()
    table.loc[0, "value"] = str(float(table.loc[0, "value"]) * 2)
    changed = bm.make_problem(demo_problem.system, demo_problem.priors, table)
    with pytest.raises(bm.ProvenanceError, match="different inputs"):
        bm.load(path, changed)
    with pytest.raises(bm.ProvenanceError):
        bm.load(path, demo_problem, bm.ModelOptions(likelihood="studentt"))


def test_failed_write_leaves_earlier_file(tmp_path):
    path = tmp_path / "out.csv"
    pd.DataFrame({"a": [1]}).to_csv(path, index=False)

    def boom(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text().startswith("a\n1")
    assert list(tmp_path.iterdir()) == [path]
