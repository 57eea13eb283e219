"""What ``--out`` may replace, where a failing run goes, staging leftovers and permissions.

The runs here use a fake case and a fake sampler (no compile, no sampling): ``run_case`` only sees
an ``InferenceData`` whose diagnostics pass or fail as the test chooses.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmfa.cases.contract import Case, CaseFiles
from bayesmfa.core import outputs
from bayesmfa.core.outputs import MARKER, atomic_write, open_incremental, read_marker, staged_dir, write_marker
from bayesmfa.drivers import cli, runner
from bayesmfa.errors import OutputError


class FitCalled(BaseException):  # noqa: N818  (a signal: BaseException so no handler swallows it)
    """The sampler was reached although the command should have stopped before."""


def fake_idata(passing: bool, seed: int = 0) -> az.InferenceData:
    """4 chains x 1000 iid draws (diagnostics pass), or chains centred apart (R-hat far above 1.01)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 1000))
    if not passing:
        x = x + np.arange(4)[:, None] * 5.0
    coords = {"chain": range(4), "draw": range(1000)}
    post = xr.Dataset({"x": (("chain", "draw"), x)}, coords=coords)
    post.attrs.update({"settings": json.dumps({"seed": seed}), "model_options": "{}", "bayesmfa_version": "test",
                       "content_hash": "0" * 64})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((4, 1000), dtype=bool))}, coords=coords)
    return az.InferenceData(posterior=post, sample_stats=stats)


@pytest.fixture
def fake_case(monkeypatch):
    """``bayesmfa run demo`` with a case that loads nothing and a sampler that returns ``state['idata']``."""
    state = {"passing": True, "calls": 0, "seed": 0}

    def fake_fit(problem, **kwargs):
        state["calls"] += 1
        return fake_idata(state["passing"], state["seed"])

    def summary_table(idata, problem, prob):
        return pd.DataFrame({"quantity": ["x"], "year_start": [2000], "year_end": [2000], "mean": [float(idata.posterior["x"].mean())]})

    case = Case(name="fake", files=lambda root: CaseFiles(Path("system.yaml"), Path("priors")),
                load=lambda root: SimpleNamespace(warnings=()), summary_table=summary_table)
    monkeypatch.setattr(runner, "get_case", lambda name: case)
    monkeypatch.setattr(runner, "fit", fake_fit)
    monkeypatch.setattr(runner, "_write_record_checks", lambda *args: None)  # the fake fit has no records to check
    return state


@pytest.fixture
def no_fit(monkeypatch):
    """A sampler that fails the test when reached."""

    def trap(*args, **kwargs):
        raise FitCalled("the sampler was reached")

    monkeypatch.setattr(runner, "fit", trap)


def run(out: Path, *extra: str) -> int:
    return cli.main(["run", "demo", "--out", str(out), "--no-progress", *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("bayesmfa run: "), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------------------- what --out may replace


def test_out_onto_a_folder_of_user_files_is_refused_before_the_fit(tmp_path, no_fit, capsys):
    data = tmp_path / "data"
    (data / "ree").mkdir(parents=True)
    (data / "ree" / "records.csv").write_text("quantity,value\nmining,1\n")
    (data / "notes.txt").write_text("mine")
    before = snapshot(data)
    assert run(data, "--quick") == 2
    line = one_error_line(capsys)
    assert str(data) in line and "not a bayesmfa result" in line and "--force" in line
    assert snapshot(data) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging folder, nothing moved aside


def test_out_with_force_replaces_the_folder(tmp_path, fake_case):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    assert run(data, "--quick", "--force") == 0
    assert not (data / "notes.txt").exists()
    assert (data / "posterior.nc").is_file() and read_marker(data)["kind"] == "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_out_onto_a_file_is_refused(tmp_path, no_fit, capsys):
    target = tmp_path / "some_file.txt"
    target.write_text("keep me")
    assert run(target, "--quick") == 2
    assert "refusing to replace a file" in one_error_line(capsys)
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some_file.txt"]  # no hidden .old-/.tmp- left


def test_out_with_force_replaces_a_file_and_leaves_nothing_hidden(tmp_path, fake_case):
    target = tmp_path / "some_file.txt"
    target.write_text("replace me")
    assert run(target, "--quick", "--force") == 0
    assert target.is_dir() and read_marker(target)["kind"] == "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some_file.txt"]


def test_out_onto_a_symlink_to_something_else_is_refused(tmp_path, no_fit, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    assert run(link, "--quick") == 2
    assert "refusing to replace" in one_error_line(capsys)
    assert link.is_symlink() and (tmp_path / "elsewhere" / "keep.txt").read_text() == "keep"


def test_out_onto_a_symlink_to_a_result_replaces_the_result_and_keeps_the_link(tmp_path, fake_case):
    real = tmp_path / "real"
    assert run(real, "--quick") == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    fake_case["seed"] = 7
    assert run(link, "--quick") == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert json.loads((real / "diagnostics.json").read_text())["settings"] == {"seed": 7}


def test_out_onto_an_empty_folder_or_a_new_path(tmp_path, fake_case):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(empty, "--quick") == 0
    assert (empty / "summary.csv").is_file() and read_marker(empty)["kind"] == "run"
    new = tmp_path / "a" / "b" / "new"
    assert run(new, "--quick") == 0
    marker = json.loads((new / MARKER).read_text())
    assert marker["kind"] == "run" and {"bayesmfa_version", "created"} <= set(marker)


def test_out_onto_an_earlier_result_replaces_it(tmp_path, fake_case):
    out = tmp_path / "res"
    assert run(out, "--quick") == 0
    (out / "report.html").write_text("stale report")  # belongs to the earlier result: goes with it
    fake_case["seed"] = 5
    assert run(out, "--quick") == 0
    assert json.loads((out / "diagnostics.json").read_text())["settings"] == {"seed": 5}
    assert not (out / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_out_onto_a_result_of_another_kind_is_refused(tmp_path, no_fit, capsys):
    out = tmp_path / "study"
    out.mkdir()
    write_marker(out, "sensitivity")
    (out / "sweeps.csv").write_text("sweep\nbaseline\n")
    assert run(out, "--quick") == 2
    assert "a bayesmfa sensitivity result" in one_error_line(capsys)
    assert (out / "sweeps.csv").exists()


def test_marker_that_is_not_ours_does_not_count(tmp_path):
    (tmp_path / MARKER).write_text("not json")
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).write_text(json.dumps({"kind": "holiday photos"}))
    assert read_marker(tmp_path) is None
    (tmp_path / "x").write_text("x")
    with pytest.raises(OutputError, match="not a bayesmfa result"):
        outputs.check_out(tmp_path, "run")


def test_force_never_replaces_the_working_folder_or_its_parents(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "x").write_text("x")
    monkeypatch.chdir(work)
    for path in (work, tmp_path, Path(".")):
        with pytest.raises(OutputError, match="current folder"):
            outputs.check_out(path, "run", force=True)


# ---------------------------------------------------------------------------- the diagnostics gate


def test_a_run_failing_its_diagnostics_goes_to_dir_failed(tmp_path, fake_case, capsys):
    out = tmp_path / "res"
    assert run(out) == 0  # passes the gate
    capsys.readouterr()
    before = snapshot(out)
    fake_case["passing"] = False
    assert run(out) == 3
    err = capsys.readouterr().err
    failed = tmp_path / "res.failed"
    assert "diagnostics FAILED" in err and str(failed) in err
    assert snapshot(out) == before
    assert read_marker(failed)["kind"] == "run"
    assert json.loads((failed / "diagnostics.json").read_text())["passed"] is False
    # a second failing run replaces the earlier failed one (it carries the marker)
    fake_case["seed"] = 3
    assert run(out) == 3
    assert json.loads((failed / "diagnostics.json").read_text())["settings"] == {"seed": 3}
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "res.failed"]


def test_allow_failed_diagnostics_writes_to_out(tmp_path, fake_case):
    fake_case["passing"] = False
    out = tmp_path / "res"
    assert run(out, "--allow-failed-diagnostics") == 0
    assert json.loads((out / "diagnostics.json").read_text())["passed"] is False
    assert not (tmp_path / "res.failed").exists()


def test_a_user_folder_at_dir_failed_is_refused_before_the_fit(tmp_path, no_fit, capsys):
    (tmp_path / "res.failed").mkdir()
    (tmp_path / "res.failed" / "mine.txt").write_text("mine")
    assert run(tmp_path / "res") == 2
    assert "res.failed" in one_error_line(capsys)
    assert (tmp_path / "res.failed" / "mine.txt").read_text() == "mine"


# ---------------------------------------------------------------------------- staging leftovers


def test_stale_staging_folders_are_removed_at_the_start_of_a_run(tmp_path, fake_case):
    out = tmp_path / "res"
    assert run(out, "--quick") == 0
    gone = dead_pid()
    killed_tmp = tmp_path / f".res.tmp-{gone}-abc123_x"
    legacy_tmp = tmp_path / ".res.tmp-k3j2h1g0"
    killed_old = tmp_path / f".res.old-{gone}-1700000000000000000"
    for folder in (killed_tmp, legacy_tmp, killed_old):
        folder.mkdir()
        (folder / "posterior.nc").write_bytes(b"partial")
    write_marker(killed_old, "run")
    forced_aside = tmp_path / f".res.old-{gone}-1700000000000000001"  # no marker: user data a --force moved aside
    forced_aside.mkdir()
    running = tmp_path / f".res.tmp-{os.getpid()}-abc123_y"  # a write in progress in a live process
    running.mkdir()
    other = tmp_path / f".other.tmp-{gone}-abc123_z"
    other.mkdir()
    assert run(out, "--quick") == 0
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["res", forced_aside.name, running.name, other.name])


def test_an_interrupted_write_leaves_no_staging_folder_and_the_earlier_result(tmp_path):
    out = tmp_path / "res"
    with staged_dir(out, "scenario") as stage:
        (stage.path / "a.csv").write_text("first")
    with pytest.raises(KeyboardInterrupt), staged_dir(out, "scenario") as stage:
        (stage.path / "a.csv").write_text("second")
        raise KeyboardInterrupt
    assert (out / "a.csv").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_an_interrupted_run_exits_130_with_one_line(tmp_path, monkeypatch, fake_case, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "fit", interrupted)
    assert run(tmp_path / "res", "--quick") == 130
    assert one_error_line(capsys) == "bayesmfa run: interrupted"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- sensitivity folders


def test_sensitivity_resumes_its_own_folder_and_marks_a_new_one(tmp_path):
    new = open_incremental(tmp_path / "sens", "sensitivity")
    assert read_marker(new)["kind"] == "sensitivity"
    (new / "baseline.nc").write_bytes(b"done earlier")
    again = open_incremental(tmp_path / "sens", "sensitivity")
    assert again == new and (again / "baseline.nc").read_bytes() == b"done earlier"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_marker(open_incremental(empty, "sensitivity"))["kind"] == "sensitivity"


def test_sensitivity_refuses_a_user_folder_before_loading_anything(tmp_path, monkeypatch, capsys):
    from bayesmfa.cases import demo

    monkeypatch.setattr(demo, "load", lambda root: (_ for _ in ()).throw(FitCalled("loaded")))
    folder = tmp_path / "priors"
    folder.mkdir()
    (folder / "mine.yaml").write_text("a: 1\n")
    assert cli.main(["sensitivity", "demo", "--out", str(folder), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bayesmfa sensitivity: ") and "not a bayesmfa result" in err and "\n" not in err
    assert (folder / "mine.yaml").read_text() == "a: 1\n" and read_marker(folder) is None


def test_sensitivity_with_force_replaces_a_user_folder_with_a_marked_one(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "mine.txt").write_text("mine")
    out = open_incremental(folder, "sensitivity", force=True)
    assert out == folder and not (folder / "mine.txt").exists() and read_marker(folder)["kind"] == "sensitivity"


def test_scenario_refuses_a_user_folder_before_reading_the_fit(tmp_path, capsys):
    folder = tmp_path / "priors"
    folder.mkdir()
    (folder / "mine.yaml").write_text("a: 1\n")
    rc = cli.main(["scenario", "demo", "--fit", str(tmp_path / "no_fit"), "--out", str(folder), "--no-trade"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("bayesmfa scenario: ") and "not a bayesmfa result" in err
    assert (folder / "mine.yaml").exists()


# ---------------------------------------------------------------------------- permissions


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_results_get_the_permissions_of_the_umask(tmp_path, fake_case, umask):
    out = tmp_path / "res"
    assert run(out, "--quick") == 0
    paths = [out, *out.rglob("*")]
    assert any(p.name == "posterior.nc" for p in paths) and any(p.name == MARKER for p in paths)
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == expected, (path.name, oct(mode), oct(expected))


def test_atomic_write_gives_the_permissions_of_the_umask(tmp_path, umask):
    path = atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("field", "value"),
    [("draws", 0), ("draws", -5), ("tune", -1), ("chains", 0), ("seed", -1), ("target_accept", 1.5),
     ("target_accept", 0.0), ("min_tree_depth", 0), ("prob", 1.0), ("draws", 2.5), ("backend", "stan"), ("prior_draws", -1),
     ("prior_draws", 1.5)],
)
def test_run_settings_refuse_impossible_values(field, value):
    with pytest.raises(ValueError, match=rf"RunSettings\.{field}"):
        runner.RunSettings(**{field: value})


def test_run_settings_accept_the_defaults_and_quick():
    assert runner.RunSettings().draws == 1000
    assert runner.RunSettings.quick(seed=3, min_tree_depth=8).chains == 2
