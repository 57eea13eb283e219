"""Tests of ``benchmarks/bench_scaling.py``: the synthetic N-region system, its records and one tiny run."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

import bayesmfa as bm

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scaling.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scaling", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()

# Counted by hand from data/ree/system.yaml with R1 in China's part:
#   nodes: mining, cracking, separation, oxide_market, electrolysis, use (N each), mining_unregistered (R1 only),
#          consumption (N x 5 end uses)                                    -> 6N + 1 + 5N
#   edges: concentrate, salt, oxide, oxide_to_metal, oxide_use, metal (N each), end_use (5N),
#          four traded products (N (N-1) each), concentrate_unregistered (1), smuggled (R1 -> N-1 others)
EXPECTED = {
    3: {"nodes": 18 + 1 + 15, "edges": 18 + 15 + 4 * 6 + 1 + 2},  # 34, 60
    5: {"nodes": 30 + 1 + 25, "edges": 30 + 25 + 4 * 20 + 1 + 4},  # 56, 140
}


@pytest.mark.parametrize("n", [3, 5])
def test_system_counts(n: int) -> None:
    graph = bm.Graph(bm.system_from_dict(bench.system_dict(n)))
    assert graph.n_nodes == EXPECTED[n]["nodes"]
    assert graph.n_edges == EXPECTED[n]["edges"]
    for flow in bench.TRADE_FLOWS:
        assert len(graph.edges_of(flow)) == n * (n - 1)
    assert len(graph.edges_of("smuggled")) == n - 1
    assert {dict(e.coords)["origin"] for e in graph.edges_of("smuggled")} == {"R1"}
    assert [dict(nd.coords)["region"] for nd in graph.nodes_of("mining_unregistered")] == ["R1"]
    assert len(graph.nodes_of("consumption")) == 5 * n


@pytest.mark.parametrize("n", [3, 5])
def test_records_cover_every_trade_pair_both_ways(n: int) -> None:
    years = (2000, 2002)
    system = bm.system_from_dict(bench.system_dict(n, years))
    problem = bm.make_problem(system, bm.priors_from_dict(bench.priors_dict(n)), bench.record_template(n, years))
    table, rec = problem.records.table, problem.records
    n_years = years[1] - years[0] + 1
    for flow in bench.TRADE_FLOWS:
        for source_type in (bench.EXPORTER, bench.IMPORTER):
            rows = table[(table["quantity"] == flow) & (table["source_type"] == source_type)]
            pairs = {(o, d) for o, d in zip(rows["origin"], rows["destination"], strict=True)}
            assert pairs == {(o, d) for o in bench.region_names(n) for d in bench.region_names(n) if o != d}
            assert len(rows) == n * (n - 1) * n_years
    # each trade edge in each year is observed by one exporter and one importer record (the records select it)
    state = rec.numerator.tocsc()
    for edge in (e for e in problem.graph.edges if e.flow in bench.TRADE_FLOWS):
        for t in range(n_years):
            col = t * (problem.graph.n_edges + 2 * problem.graph.n_nodes) + edge.index
            observers = table.iloc[state[:, col].indices]["source_type"]
            assert sorted(observers) == [bench.EXPORTER, bench.IMPORTER], edge.label
    assert (table["quantity"] == "mining").sum() == n * n_years
    assert (table["quantity"] == "use.input").sum() == n * n_years
    assert rec.is_share.sum() == n  # magnets share of each region in the first year


def test_one_tiny_run_returns_a_full_row() -> None:
    row = bench.run_child(3, (2000, 2003), draws=30, tune=30, chains=2, seed=1, backend="pymc", timeout=300)
    assert row["status"] == "ok", row["status"]
    assert set(bench.COLUMNS) <= set(row)
    assert all(row[c] is not None for c in bench.COLUMNS), row
    assert (row["regions"], row["nodes"], row["edges"]) == (3, EXPECTED[3]["nodes"], EXPECTED[3]["edges"])
    assert math.isfinite(row["wall_s"]) and row["wall_s"] > 0
    assert row["latent"] > row["edges"]
    assert row["records"] > 4 * 6 * 2 * 4  # mirror trade records alone
    assert row["peak_mem_mb"] > 0 and row["steps_per_draw"] > 0


def test_timeout_is_reported() -> None:
    row = bench.run_child(3, (2000, 2005), draws=30, tune=30, chains=1, seed=1, backend="auto", timeout=0.5)
    assert row["status"] == "timed out after 0.5 s"
    assert row["regions"] == 3 and row["wall_s"] is None


def test_outputs_and_grows_worst(tmp_path: Path) -> None:
    rows = [
        {"regions": n, "nodes": 11 * n + 1, "edges": 4 * n * n + 8 * n, "latent": 30 * n * n, "records": 100 * n * n,
         "wall_s": 2.0 * n**3, "min_ess_bulk": 100.0, "ess_per_s": 1.0, "max_rhat": 1.01, "divergences": 0,
         "steps_per_draw": 31.0, "peak_mem_mb": 400.0 + n, "setup_s": 1.0, "status": "ok"}
        for n in (3, 10, 20)
    ]
    rows.append(bench._blank_row(40, "timed out after 1800 s", {"latent": 48000}))
    line = bench.grows_worst(rows)
    assert line.startswith("grows worst: wall time")
    assert "latent variables 2.00" in line
    bench.write_csv(rows, tmp_path / "s.csv")
    with open(tmp_path / "s.csv", encoding="utf-8") as fh:
        read = list(csv.DictReader(fh))
    assert [r["regions"] for r in read] == ["3", "10", "20", "40"]
    assert read[-1]["status"] == "timed out after 1800 s" and read[-1]["wall_s"] == ""
    bench.write_plot(rows, tmp_path / "s.png", timeout=1800)
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
