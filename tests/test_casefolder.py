"""A user's own system from files: ``bayesmfa init``, ``bayesmfa check`` and ``bayesmfa run PATH``.

Also the command line's light start (``--version``; ``--help`` without PyMC)
and the lookup of the built-in cases' files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

import bayesmfa as bm
from bayesmfa.cases import _REGISTERED, case_names, get_case, project_root, register_case
from bayesmfa.cases.contract import Case
from bayesmfa.core.model import ModelOptions
from bayesmfa.drivers import cli
from bayesmfa.drivers.casecheck import check_case
from bayesmfa.drivers.starter import TEMPLATE, init_case
from bayesmfa.errors import OutputError, PriorError, RecordError


@pytest.fixture
def starter(tmp_path: Path) -> Path:
    return init_case(tmp_path / "mycase")


# ---------------------------------------------------------------------------- resolving a case


def test_built_in_names_and_folders_give_one_case_contract(starter):
    ree = get_case("ree")
    assert isinstance(ree, Case) and ree.name == "ree" and ree.options.share_sums and ree.sampler["min_tree_depth"] == 8
    assert ree.files(project_root()).records == ()  # built from its tables by its loader
    case = get_case(str(starter))
    assert isinstance(case, Case) and case.name == "mycase"
    files = case.files(None)
    assert (files.system.name, files.priors.name, [r.name for r in files.records]) == ("system.yaml", "priors", ["records.csv"])
    assert case.options == ModelOptions() and dict(case.sampler) == {} and case.sensitivity is None


def test_an_installed_package_adds_a_case_through_its_entry_point(starter, monkeypatch):
    """``[project.entry-points."bayesmfa.cases"] cobalt = "pkg.cases:case"``: the name is known, get_case builds it."""
    import bayesmfa.cases as cases

    made = replace(get_case(str(starter)), name="cobalt")

    def factory() -> Case:
        return made

    class EntryPoint:  # what importlib.metadata gives: a name and load() -> the object the entry point names
        name = "cobalt"

        def load(self):
            return factory

    monkeypatch.setattr(cases, "entry_points", lambda group: [EntryPoint()] if group == cases.ENTRY_POINT_GROUP else [])
    assert "cobalt" in case_names() and get_case("cobalt") is made
    assert cli.main(["check", "cobalt"]) == 0


def test_a_case_refuses_sampler_settings_no_fit_takes(starter):
    case = get_case(str(starter))
    with pytest.raises(ValueError, match="unknown sampler settings.*'draw'"):
        replace(case, sampler={"draw": 10})


def test_registered_cases_are_named_like_built_in_ones(starter):
    made = replace(get_case(str(starter)), name="mine")
    register_case("mine", lambda: made)
    try:
        assert "mine" in case_names() and get_case("mine") is made
        assert cli.main(["check", "mine"]) == 0  # the CLI takes a registered name
    finally:
        _REGISTERED.pop("mine")
    with pytest.raises(ValueError, match="built in"):
        register_case("ree", lambda: made)


def test_a_folder_without_system_yaml_or_an_unknown_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no system.yaml"):
        get_case(tmp_path)
    with pytest.raises(ValueError, match="neither a known case"):
        get_case(str(tmp_path / "nowhere"))


def test_a_case_folder_loads_every_record_file(starter):
    extra = pd.read_csv(starter / "records.csv", dtype=str).head(3)
    extra["source"] = "a second survey"  # a second source of the same quantities, not a duplicate
    extra.to_csv(starter / "records_more.csv", index=False)
    problem = bm.load_case(starter)
    files = {Path(f).name for f in problem.records.table["file"]}
    assert files == {"records.csv", "records_more.csv"}
    assert len(problem.records.value) == len(pd.read_csv(starter / "records.csv")) + 3


def test_project_root_finds_the_checkout_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = project_root()
    assert (root / "data" / "ree" / "system.yaml").is_file() and (root / "priors" / "ree").is_dir()


# ---------------------------------------------------------------------------- init


def test_init_writes_the_template_and_never_overwrites(tmp_path):
    dest = init_case(tmp_path / "new")
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(TEMPLATE).as_posix() for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert written == shipped and "system.yaml" in written and "priors/priors.yaml" in written
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not an empty folder"):
        init_case(tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert cli.main(["init", str(tmp_path / "busy")]) == 2


def test_the_starter_has_records_of_each_kind_and_a_stock(starter):
    system = bm.load_system(starter / "system.yaml")
    assert system.stocks and len(system.dims["region"]) == 2
    assert {"mining", "refining", "use"} <= set(system.processes)
    records = pd.read_csv(starter / "records.csv", dtype=str).fillna("")
    assert {"production", "customs", "survey"} <= set(records["source_type"])
    trade = records[records["origin"] != ""]
    assert (trade["factor"] == "exporter_reporting").any() and (trade["factor"] == "").any()  # mirror records
    assert (records["bound"] == "upper").sum() == 1
    assert records["quantity"].str.startswith("stockpile_").any()


# ---------------------------------------------------------------------------- check


def test_check_passes_on_the_starter_and_the_built_in_cases(starter, capsys):
    assert check_case(starter).ok
    assert cli.main(["check", str(starter)]) == 0
    assert "records are valid" in capsys.readouterr().out
    for name in ("demo", "ree"):
        found = check_case(name)
        assert found.ok, found.errors
        assert found.n_records > 100


def _break_starter(folder: Path) -> None:
    """Five independent mistakes, in the priors and the records, as a newcomer makes them."""
    doc = yaml.safe_load((folder / "priors" / "priors.yaml").read_text())
    del doc["shares"][0]["sd_logit"]  # 1: a share prior without its spread
    doc["steps"] = [s for s in doc["steps"] if s["target"] != "share"]  # 2: no share steps for the splitting nodes
    doc["noise"] = [n for n in doc["noise"] if n["source_type"] != "survey"]  # 3: records of a source type without a noise prior
    (folder / "priors" / "priors.yaml").write_text(yaml.safe_dump(doc))
    lines = (folder / "records.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",north,", ",west,", 1)  # 4: an unknown coord (line 2)
    cells = lines[4].split(",")
    cells[5] = "lots"  # 5: a value that is not a number (line 5)
    lines[4] = ",".join(cells)
    (folder / "records.csv").write_text("\n".join(lines) + "\n")


def test_check_reports_every_error_at_once_naming_file_line_and_field(starter, capsys):
    _break_starter(starter)
    found = check_case(starter)
    messages = [str(e) for e in found.errors]
    assert any(isinstance(e, PriorError) and e.field == "shares[0].sd_logit" for e in found.errors), messages
    assert any("share steps" in m for m in messages), messages
    assert any("noise" in m and "survey" in m for m in messages), messages
    records = [e for e in found.errors if isinstance(e, RecordError)]
    assert {(e.row, e.field) for e in records} >= {(2, "region"), (5, "value")}, messages
    assert all("records.csv" in str(e) for e in records)
    assert cli.main(["check", str(starter)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(found.errors) >= 5  # one line per error, all of them


def test_check_collects_bad_prior_entries_across_files(starter):
    (starter / "priors" / "extra.yaml").write_text(
        "inputs:\n  - {process: mining, dist: LogNormal, median: 1, sigma: 1}\n"  # no source
        "yields:\n  - {process: refining, dist: Beta, alpha: 2, beta: 2, source: x, colour: red}\n"  # unknown key
    )
    found = check_case(starter)
    fields = {e.field for e in found.errors if isinstance(e, PriorError)}
    assert {"inputs[0].source", "yields[0].colour"} <= fields


def test_check_reads_the_labels_file_as_run_and_report_do(starter, capsys):
    labels = starter / "labels.yaml"
    labels.write_text(labels.read_text(encoding="utf-8") + "colours: {ore: red}\n", encoding="utf-8")
    (starter / "priors" / "extra.yaml").write_text("inputs: 3\n")  # and the other errors are still found
    found = check_case(starter)
    messages = [str(e) for e in found.errors]
    assert any("labels.yaml: unknown key 'colours'" in m for m in messages), messages
    assert any(isinstance(e, PriorError) and e.field == "inputs" for e in found.errors)
    assert cli.main(["check", str(starter)]) == 1
    printed = capsys.readouterr()
    assert "unknown key 'colours'" in printed.out + printed.err


def test_a_process_instance_left_without_flows_is_reported_not_raised(starter):
    """The system file is valid, but the ore leaves only the north's mines: the south's mining instance sends nothing."""
    doc = yaml.safe_load((starter / "system.yaml").read_text())
    for flow in ("ore_domestic", "ore_trade"):
        doc["flows"][flow]["from_coords"] = {"region": ["north"]}
    (starter / "system.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    found = check_case(starter)
    assert [e.field for e in found.errors] == ["processes.mining"]
    assert "no outgoing flow instance" in str(found.errors[0])


def test_a_corrupt_system_is_reported_with_the_prior_and_record_files_still_read(starter):
    (starter / "system.yaml").write_text("name: x\nunit: kt\n")
    (starter / "priors" / "priors.yaml").write_text("inputs: 3\n")
    found = check_case(starter)
    assert any("system.yaml" in str(e) for e in found.errors)
    assert any(isinstance(e, PriorError) and e.field == "inputs" for e in found.errors)


# ---------------------------------------------------------------------------- run PATH


def test_run_a_case_folder_from_an_empty_working_directory(starter, tmp_path, monkeypatch, capsys):
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = ["run", str(starter), "--out", "fit", "--quick", "--no-progress", "--method", "laplace"]
    assert cli.main(argv) == 0
    out = work / "fit"
    assert {"posterior.nc", "summary.csv", "diagnostics.json", "record_checks.csv"} <= {p.name for p in out.iterdir()}
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["case"] == "mycase" and diag["settings"]["method"] == "laplace"
    checks = pd.read_csv(out / "record_checks.csv")
    assert len(checks) == len(pd.read_csv(starter / "records.csv"))
    idata = bm.load(out / "posterior.nc")
    assert "flow_stockpile_addition" in idata.posterior and "stock_change_stockpile" in idata.posterior
    # the case's label table travels with the result: the report's title and the figures' names come from it
    assert (out / "labels.yaml").read_text() == (starter / "labels.yaml").read_text()
    html = bm.write_report(out).read_text()
    assert "<title>Starter: two regions, 2015-2022</title>" in html and "North" in html
    assert "summary.md" in {p.name for p in out.iterdir()}


def test_unknown_case_arguments_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["run", str(tmp_path), "--out", str(tmp_path / "o")])
    assert err.value.code == 2
    assert "no system.yaml" in capsys.readouterr().err


# ---------------------------------------------------------------------------- a light command line


def test_version_and_help_do_not_load_pymc():
    code = ("import sys, contextlib, io\nfrom bayesmfa.drivers import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()) as buf:\n"
            "    try:\n        cli.main(['--version'])\n    except SystemExit:\n        pass\n"
            "print(buf.getvalue().strip()); print('pymc' in sys.modules, 'arviz' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == f"bayesmfa {bm.__version__}"
    assert out[1] == "False False"


def test_public_names_resolve_lazily_and_all_exist():
    missing = [name for name in bm.__all__ if not hasattr(bm, name)]
    assert not missing
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        bm.nothing_here  # noqa: B018


@pytest.mark.slow
def test_the_starter_converges_with_default_settings(starter, tmp_path):
    result = bm.run_case(starter, tmp_path / "fit", bm.RunSettings(progressbar=False))
    assert not result.failures, result.failures
    assert result.diagnostics.divergences == 0
