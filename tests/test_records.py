"""Records: validation errors name file, row and field; rows compile into the right operator."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_records

import bayesmfa as bm
from bayesmfa.core.graph import Graph
from bayesmfa.core.records import StateIndex


@pytest.fixture
def graph(tiny_system_dict):
    return Graph(bm.system_from_dict(tiny_system_dict))


def _write(tmp_path, df):
    path = tmp_path / "records.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("row", "field", "value", "words"),
    [
        (0, "value", "-1", "non-negative"),
        (1, "value", "", "missing value"),
        (0, "value", "abc", "not a number"),
        (0, "region", "Mars", "unknown coord 'Mars'"),
        (0, "quantity", "smelting", "unknown quantity 'smelting'"),
        (0, "unit", "USD", "unknown unit 'USD'"),
        (2, "year", "1999", "outside the system's years"),
        (0, "source", "", "missing value"),
        (2, "origin", "B", "matches no flow"),
        (0, "bound", "maybe", "bound must be"),
        (2, "factor", "gross**x", "malformed factor expression"),
        (2, "factor", "gross/", "malformed factor expression"),
    ],
)
def test_bad_record_names_file_row_and_field(tmp_path, graph, row, field, value, words):
    df = tiny_records()
    df.loc[row, field] = value
    if field == "origin":
        df.loc[row, "destination"] = "B"  # B -> B is not a trade flow
    path = _write(tmp_path, df)
    with pytest.raises(bm.RecordError) as err:
        bm.compile_records(bm.read_records(path), graph)
    assert err.value.row == row + 2  # header is line 1
    assert err.value.field == (field if field != "origin" else "quantity")
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_misspelt_column_is_an_error_not_ignored(tmp_path, graph):
    df = tiny_records().rename(columns={"region": "regoin"})
    with pytest.raises(bm.RecordError, match="unknown column 'regoin'"):
        bm.compile_records(bm.read_records(_write(tmp_path, df)), graph)


def test_dim_not_of_quantity_is_an_error(tmp_path, graph):
    df = tiny_records()
    df.loc[3, "region"] = "A"
    df.loc[3, "quantity"] = "ore_trade"
    with pytest.raises(bm.RecordError, match="has no dim 'region'") as err:
        bm.compile_records(bm.read_records(_write(tmp_path, df)), graph)
    assert err.value.row == 5


def test_operator_sums_partners_years_and_converts_units(graph):
    rec = bm.compile_records(tiny_records(), graph)
    state = StateIndex(graph)
    num = rec.numerator.toarray()
    # row 0: mining output in A, 2000
    a = graph.nodes_of("mining")[0].index
    assert np.flatnonzero(num[0]).tolist() == [state.output(0, a)]
    # row 1: 8000 t -> 8 kt
    assert rec.value[1] == pytest.approx(8.0)
    # row 2: ore_trade from A to every destination (only B), 2002
    e = [x.index for x in graph.edges_of("ore_trade") if dict(x.coords)["origin"] == "A"]
    assert np.flatnonzero(num[2]).tolist() == [state.edge(2, e[0])]
    assert rec.factor_matrix[2].tolist() == [1.0] and rec.factors == ["gross"]
    # row 3: use, both regions, 2000-2003 -> 8 state entries
    assert num[3].sum() == 8
    assert not rec.is_share.any()


def test_factor_expression_multiplies_and_divides(graph):
    df = tiny_records()
    df.loc[2, "factor"] = "reporting / gross"
    df.loc[0, "factor"] = "/gross"
    rec = bm.compile_records(df, graph)
    assert rec.factors == ["gross", "reporting"]
    assert rec.factor_matrix[2].tolist() == [-1.0, 1.0]  # reporting x total / gross
    assert rec.factor_matrix[0].tolist() == [-1.0, 0.0]
    assert rec.factor_matrix[1].tolist() == [0.0, 0.0]


def test_share_record_has_denominator(graph):
    df = tiny_records().iloc[[0]].copy()
    df["quantity"], df["region"], df["value"], df["unit"], df["share_of"] = "use", "A", "40", "%", "region"
    rec = bm.compile_records(df, graph)
    assert rec.is_share.tolist() == [True]
    assert rec.value[0] == pytest.approx(0.4)
    assert rec.numerator.sum() == 1 and rec.denominator.sum() == 2


def test_share_above_one_rejected(graph):
    df = tiny_records().iloc[[0]].copy()
    df["quantity"], df["region"], df["value"], df["unit"], df["share_of"] = "use", "A", "1.2", "share", "region"
    with pytest.raises(bm.RecordError, match="at most 1"):
        bm.compile_records(df, graph)


def test_duplicate_record_ids(graph):
    df = tiny_records()
    df["record_id"] = ["a", "b", "a", "c"]
    with pytest.raises(bm.RecordError, match="duplicate record_id 'a'"):
        bm.compile_records(df, graph)
