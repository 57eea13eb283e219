"""Bad input, as a careless or unlucky user would give it, through the command line.

Each case takes a fresh copy of the shipped files of a case (``data/<case>``, ``priors/<case>``),
corrupts one file, and runs ``bayesmfa run <case> --root COPY`` with the sampler replaced by a
trap. A corrupted input must end in exit 2 with ONE line on stderr naming the file (and the line
where one exists), before anything is compiled; a valid variant (BOM, CRLF, trailing blank line)
must load to exactly the records of the shipped files. Table corruptions must also be reported by
``bayesmfa data check``: the check and the loader agree. Corrupt result files (``posterior.nc``)
go through ``report`` and ``scenario``. YAML never executes ``!!python`` tags.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from corrupt import (
    add_cell,
    append_rows,
    cut_cells,
    drop_column,
    duplicate,
    header_only,
    latin1,
    recode,
    replace_text,
    set_bytes,
    set_cell,
    trailing_blank,
    with_bom,
    with_crlf,
)

from bayesmfa.drivers import cli, runner

REPO = Path(__file__).resolve().parents[1]
SENTINEL = "bayesmfa_yaml_was_executed"


class FitReached(BaseException):  # noqa: N818  (a signal, not an error: BaseException so no handler swallows it)
    """Raised by the trap that replaces the sampler: the input was accepted."""

    def __init__(self, problem) -> None:
        super().__init__("fit reached")
        self.problem = problem


@pytest.fixture
def trap(monkeypatch):
    def fake_fit(problem, *args, **kwargs):
        raise FitReached(problem)

    monkeypatch.setattr(runner, "fit", fake_fit)


def copy_case(case: str, dest: Path) -> Path:
    shutil.copytree(REPO / "data" / case, dest / "data" / case, ignore=shutil.ignore_patterns("raw", "build"))
    shutil.copytree(REPO / "priors" / case, dest / "priors" / case)
    return dest


# ----------------------------------------------------------------------------- corruptions of text files


def latin1_yaml(path: Path) -> None:
    """A comment with an accent, saved as latin-1 (not valid UTF-8)."""
    path.write_bytes(path.read_text(encoding="utf-8").replace("\n", " # café\n", 1).encode("latin-1", errors="replace"))


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One corrupted input: which file of which case, how, and what must happen.

    ``line`` is the line the error must name (None: no single line, e.g. an encoding);
    ``table`` says whether ``bayesmfa data check`` must report it too.
    """

    case: str
    file: str
    mutate: Callable[[Path], None]
    ok: bool = False
    line: int | None = None
    table: bool = True
    words: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.file if self.file.startswith("priors/") else f"data/{self.case}/{self.file}"


CASES: dict[str, Case] = {}


def add(name: str, case: Case) -> None:
    assert name not in CASES
    CASES[name] = case


# Row-level corruptions, each on two REE tables and on the demo's generic record file.
# Line 4 of every file is a record row (checked by test_corrupted_lines_are_records).
ROW_TARGETS = {"ree_mine": ("ree", "mine_production.csv"), "ree_us_trade": ("ree", "us_trade.csv"),
               "demo": ("demo", "records.csv")}
for key, (case, file) in ROW_TARGETS.items():
    region = "region"
    add(f"{key}-value-text", Case(case, file, set_cell(4, "value", "twelve"), line=4))
    add(f"{key}-value-inf", Case(case, file, set_cell(4, "value", "inf"), line=4))
    add(f"{key}-value-nan", Case(case, file, set_cell(4, "value", "nan"), line=4))
    add(f"{key}-value-negative", Case(case, file, set_cell(4, "value", "-5"), line=4))
    add(f"{key}-value-1e30", Case(case, file, set_cell(4, "value", "1e30"), line=4))
    add(f"{key}-value-blank", Case(case, file, set_cell(4, "value", ""), line=4))
    add(f"{key}-unknown-region", Case(case, file, set_cell(4, region, "Z"), line=4))
    add(f"{key}-misspelt-quantity", Case(case, file, set_cell(4, "quantity", "mine_prodution" if case == "ree" else "minning"), line=4))
    add(f"{key}-year-outside", Case(case, file, set_cell(4, "year", "1850"), line=4))
    add(f"{key}-year-text", Case(case, file, set_cell(4, "year", "20x0"), line=4))
    add(f"{key}-unknown-unit", Case(case, file, set_cell(4, "unit", "kg per fortnight"), line=4))
    add(f"{key}-missing-column", Case(case, file, drop_column("value"), words=("value",)))
    add(f"{key}-ragged-long", Case(case, file, add_cell(4), line=4))
    add(f"{key}-ragged-short", Case(case, file, cut_cells(4, 3), line=4))
    add(f"{key}-duplicate-row", Case(case, file, duplicate(4), line=5))
    add(f"{key}-latin1", Case(case, file, latin1(3)))
    add(f"{key}-utf16", Case(case, file, recode("utf-16")))
    add(f"{key}-empty", Case(case, file, set_bytes(b"")))
    add(f"{key}-header-only", Case(case, file, header_only))
    add(f"{key}-binary", Case(case, file, set_bytes(bytes(range(256)) * 8)))
    add(f"{key}-bom", Case(case, file, with_bom, ok=True))
    add(f"{key}-crlf", Case(case, file, with_crlf, ok=True))
    add(f"{key}-trailing-blank-line", Case(case, file, trailing_blank, ok=True))

# Cross-record contradictions (the demo's generic records)
DEMO_SOURCE = {"unit": "kt", "source_type": "production", "source": "a user's note"}
add("demo-bounds-contradict", Case("demo", "records.csv", append_rows(
    {"quantity": "mining", "region": "A", "year": "2012", "value": "100", "bound": "lower", **DEMO_SOURCE},
    {"quantity": "mining", "region": "A", "year": "2012", "value": "10", "bound": "upper", **DEMO_SOURCE}),
    table=False, words=("bound",)))
add("demo-upper-below-measurement", Case("demo", "records.csv", append_rows(
    {"quantity": "mining", "region": "A", "year": "2010", "value": "5", "bound": "upper", **DEMO_SOURCE}),
    table=False, words=("upper",)))
add("demo-shares-over-one", Case("demo", "records.csv", append_rows(
    *({"quantity": "end_use", "region": "A", "end_use": u, "year": "2015", "value": "0.9", "unit": "share",
       "share_of": "end_use", "source_type": "survey", "source": "one survey"} for u in ("magnets", "catalysts"))),
    table=False, words=("share",)))
add("demo-unknown-bound", Case("demo", "records.csv", append_rows(
    {"quantity": "mining", "region": "A", "year": "2012", "value": "50", "bound": "roughly", **DEMO_SOURCE}),
    line=150, words=("bound",)))
add("demo-unknown-column", Case("demo", "records.csv", replace_text("end_use,year", "enduse,year"), words=("enduse",)))

# YAML: systems and priors
for case, prior in (("demo", "priors/demo/priors.yaml"), ("ree", "priors/ree/noise.yaml")):
    system = "system.yaml"
    add(f"{case}-system-unclosed-bracket", Case(case, system, replace_text("dims:", "dims: [unclosed"), table=False))
    add(f"{case}-system-tab-indent", Case(case, system, replace_text("\n  ", "\n\t"), table=False))
    add(f"{case}-system-python-tag", Case(case, system, set_bytes(
        f"!!python/object/apply:os.system ['touch {SENTINEL}']\n".encode()), table=False))
    add(f"{case}-system-list", Case(case, system, set_bytes(b"- name\n- unit\n"), table=False))
    add(f"{case}-system-empty", Case(case, system, set_bytes(b""), table=False))
    add(f"{case}-system-utf16", Case(case, system, recode("utf-16"), table=False))
    add(f"{case}-prior-python-tag", Case(case, prior, replace_text(
        "source:", f"exploit: !!python/object/apply:os.system ['touch {SENTINEL}']\n    source:"), table=False))
    add(f"{case}-prior-duplicate-key", Case(case, prior, replace_text("    source:", "    source: twice\n    source:"), table=False))
    add(f"{case}-prior-latin1", Case(case, prior, latin1_yaml, table=False))
    add(f"{case}-prior-bom", Case(case, prior, with_bom, ok=True, table=False))
add("demo-system-unknown-process", Case("demo", "system.yaml", replace_text("to: refining,", "to: smelting,"), table=False,
                                        words=("smelting",)))
add("demo-prior-selector-matches-nothing", Case("demo", "priors/demo/priors.yaml", replace_text(
    "  - process: mining\n    dist: LogNormal\n    median: 50",
    "  - process: mining\n    dist: LogNormal\n    median: 50\n    sigma: 1.0\n    source: x\n"
    "  - process: mining\n    region: Z\n    dist: LogNormal\n    median: 50"), table=False, words=("Z",)))
add("demo-prior-unknown-dist", Case("demo", "priors/demo/priors.yaml", replace_text("dist: Beta", "dist: Betta"), table=False,
                                    words=("Betta",)))
add("demo-prior-negative-sigma", Case("demo", "priors/demo/priors.yaml", replace_text("sigma: 1.0", "sigma: -1.0"), table=False))


def baseline_problem(case: str, root: Path) -> object:
    """The problem ``bayesmfa run`` hands to the sampler for the files under ``root``."""
    with pytest.raises(FitReached) as hit:
        cli.main(["run", case, "--root", str(root), "--out", str(root / "out"), "--quick", "--no-progress"])
    return hit.value.problem


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, monkeypatch, capsys, trap):
    spec = CASES[name]
    root = copy_case(spec.case, tmp_path / "copy")
    target = root / spec.path
    spec.mutate(target)
    monkeypatch.chdir(tmp_path)  # a '!!python' tag that ran would leave its file here
    argv = ["run", spec.case, "--root", str(root), "--out", str(tmp_path / "out"), "--quick", "--no-progress"]
    if spec.ok:
        with pytest.raises(FitReached) as hit:
            cli.main(argv)
        clean = copy_case(spec.case, tmp_path / "clean")
        expected = baseline_problem(spec.case, clean)
        assert hit.value.problem.content_hash() == expected.content_hash()
        if spec.table:
            assert cli.main(["data", "check", str(target.parent)]) == 0
        return
    rc = cli.main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert target.name in lines[0], lines[0]
    if spec.line is not None:
        assert re.search(rf"\b(line|row) {spec.line}\b", lines[0]), lines[0]
    for word in spec.words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob(SENTINEL)), "a YAML tag executed code"
    if spec.table:
        assert cli.main(["data", "check", str(target.parent)]) != 0
        report = capsys.readouterr().out
        assert target.name in report and "No data problems" not in report


def test_the_suite_is_large_enough():
    assert len(CASES) >= 60
    assert sum(c.ok for c in CASES.values()) >= 8  # valid variants that must be accepted


@pytest.mark.parametrize("key", sorted(ROW_TARGETS))
def test_corrupted_lines_are_records(key, trap):
    """Line 4 of each row target is a record of the shipped data (so its corruption cannot hide as an unused row)."""
    case, file = ROW_TARGETS[key]
    problem = baseline_problem(case, REPO)
    table = problem.records.table
    if case == "demo":
        assert ((table["file"].map(lambda f: Path(f).name) == file) & (table["row"].astype(int) == 4)).any()
    else:
        stem = file.removesuffix(".csv")
        assert table["record_id"].str.match(rf"^{stem}:(\d+\+)*4(\+\d+)*(:|$)").any()


# ----------------------------------------------------------------------------- corrupt result files


def _small_fit_file(path: Path) -> None:
    import arviz as az
    import xarray as xr

    ds = xr.Dataset({"x": (("chain", "draw"), np.zeros((1, 5)))}, coords={"chain": [0], "draw": range(5)})
    az.InferenceData(posterior=ds).to_netcdf(str(path))


NETCDF = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "random-bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("this is not a netCDF file\n"),
}


@pytest.mark.parametrize("command", ["report", "scenario"])
@pytest.mark.parametrize("kind", sorted(NETCDF))
def test_corrupt_posterior(kind, command, tmp_path, capsys):
    fit = tmp_path / "fit"
    fit.mkdir()
    nc = fit / "posterior.nc"
    _small_fit_file(nc)
    NETCDF[kind](nc)
    (fit / "summary.csv").write_text("quantity,year,mean,sd,q05,q50,q95\nmining,2010,1,1,1,1,1\n")
    argv = ["report", str(fit)] if command == "report" else \
        ["scenario", "demo", "--root", str(REPO), "--fit", str(fit), "--out", str(tmp_path / "scen"), "--no-trade"]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "posterior.nc" in lines[0]
    assert not (fit / "report.html").exists() and not (tmp_path / "scen").exists()
