"""One error style on every command: one line ``bayesmfa <command>: ...`` and exit 2; arguments refused by argparse
before anything is loaded; ``--debug`` shows the traceback; damaged ``posterior.nc`` files named.

No test here samples: the sampler is replaced by a trap that fails the test when reached.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayesmfa.drivers import cli, runner
from bayesmfa.errors import ResultFileError, SpecError
from bayesmfa.inference.io import load

REPO = Path(__file__).resolve().parents[1]


class FitCalled(BaseException):  # noqa: N818  (a signal: BaseException so no handler swallows it)
    """The sampler was reached although the command should have stopped before."""


@pytest.fixture(autouse=True)
def trap(monkeypatch):
    """Every sampler the commands could reach fails the test."""
    import bayesmfa.inference.sampling

    def fit(*args, **kwargs):
        raise FitCalled("the sampler was reached")

    monkeypatch.setattr(runner, "fit", fit)
    monkeypatch.setattr(bayesmfa.inference.sampling, "fit", fit)


def error_line(capsys, command: str) -> str:
    """The only line on stderr, which must start with ``bayesmfa <command>: ``."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"bayesmfa {command}: "), lines[0]
    return lines[0]


def copy_demo(dest: Path) -> Path:
    shutil.copytree(REPO / "data" / "demo", dest / "data" / "demo")
    shutil.copytree(REPO / "priors" / "demo", dest / "priors" / "demo")
    return dest


# ---------------------------------------------------------------------------- arguments


RUN_ARGS = [
    ["--draws", "-5"], ["--draws", "0"], ["--draws", "many"], ["--tune", "-1"], ["--chains", "0"], ["--seed", "-1"],
    ["--target-accept", "1.5"], ["--target-accept", "0"], ["--target-accept", "1"], ["--min-tree-depth", "0"],
]


@pytest.mark.parametrize("bad", RUN_ARGS, ids=lambda a: " ".join(a))
def test_run_refuses_bad_arguments_before_anything_is_loaded(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "demo", "--out", str(tmp_path / "out"), *bad])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {bad[0]}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [["--workers", "0"], ["--seed", "-1"], ["--seed", "x"]], ids=lambda a: " ".join(a))
def test_sensitivity_refuses_bad_arguments(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sensitivity", "demo", "--out", str(tmp_path / "out"), *bad])
    assert exit_.value.code == 2 and f"argument {bad[0]}" in capsys.readouterr().err


def test_scenario_refuses_a_year_that_is_not_an_integer(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["scenario", "demo", "--fit", str(tmp_path), "--out", str(tmp_path / "o"), "--no-trade", "--year", "20x0"])
    assert exit_.value.code == 2 and "argument --year" in capsys.readouterr().err


def test_good_arguments_reach_the_sampler(tmp_path):
    with pytest.raises(FitCalled):
        cli.main(["run", "demo", "--out", str(tmp_path / "out"), "--draws", "1", "--tune", "0", "--chains", "1", "--seed", "0",
                  "--target-accept", "0.99", "--min-tree-depth", "1", "--root", str(REPO), "--no-progress"])
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- one line per input error


def test_run_with_a_missing_root(tmp_path, capsys):
    assert cli.main(["run", "demo", "--out", str(tmp_path / "out"), "--root", str(tmp_path / "nowhere"), "--quick"]) == 2
    line = error_line(capsys, "run")
    assert line.endswith(f"{tmp_path / 'nowhere'}: no such folder (the root must hold data/ and priors/)")


def test_run_with_a_root_without_the_case(tmp_path, capsys):
    assert cli.main(["run", "demo", "--out", str(tmp_path / "out"), "--root", str(tmp_path), "--quick"]) == 2
    line = error_line(capsys, "run")
    assert str(tmp_path / "data" / "demo" / "system.yaml") in line and "file not found" in line


def test_run_with_a_broken_priors_yaml(tmp_path, capsys):
    root = copy_demo(tmp_path / "copy")
    priors = root / "priors" / "demo" / "priors.yaml"
    priors.write_text(priors.read_text().replace("inputs:", "inputs: [unclosed", 1))
    assert cli.main(["run", "demo", "--out", str(tmp_path / "out"), "--root", str(root), "--quick"]) == 2
    assert "priors.yaml" in error_line(capsys, "run")
    assert not (tmp_path / "out").exists()


def test_report_of_a_missing_folder(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    assert "nope" in error_line(capsys, "report")


def test_data_check_of_a_missing_path(tmp_path, capsys):
    assert cli.main(["data", "check", str(tmp_path / "nope")]) == 2
    assert "nope" in error_line(capsys, "data check")


def test_debug_shows_the_traceback(tmp_path):
    argv = ["run", "demo", "--out", str(tmp_path / "out"), "--root", str(tmp_path), "--quick"]
    with pytest.raises(SpecError, match="system.yaml"):
        cli.main(["--debug", *argv])
    with pytest.raises(SpecError):
        cli.main([*argv, "--debug"])


def test_the_installed_command_prints_one_line_or_with_debug_the_traceback(tmp_path):
    root = copy_demo(tmp_path / "copy")
    priors = root / "priors" / "demo" / "priors.yaml"
    priors.write_text(priors.read_text().replace("inputs:", "inputs: [unclosed", 1))
    argv = [sys.executable, "-m", "bayesmfa.drivers.cli", "run", "demo", "--out", str(tmp_path / "out"), "--root", str(root)]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in plain.stderr.splitlines() if ln.strip()]
    assert plain.returncode == 2 and len(lines) == 1, plain.stderr
    assert lines[0].startswith("bayesmfa run: ") and "priors.yaml" in lines[0]
    debug = subprocess.run([*argv, "--debug"], capture_output=True, text=True, timeout=300)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr and "priors.yaml" in debug.stderr


# ---------------------------------------------------------------------------- damaged posterior.nc


def small_fit(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ds = xr.Dataset({"x": (("chain", "draw"), np.zeros((1, 5)))}, coords={"chain": [0], "draw": range(5)})
    path = folder / "posterior.nc"
    az.InferenceData(posterior=ds).to_netcdf(str(path))
    (folder / "summary.csv").write_text("quantity,year,mean,sd,q05,q50,q95\nmining,2010,1,1,1,1,1\n")
    return path


DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("not netCDF\n"),
    "no-posterior": lambda p: xr.Dataset({"y": ("i", [1.0])}).to_netcdf(p, engine="h5netcdf"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_load_names_a_damaged_file(kind, tmp_path):
    path = small_fit(tmp_path)
    DAMAGE[kind](path)
    with pytest.raises(ResultFileError, match=r"posterior\.nc: not a readable bayesmfa result"):
        load(path)


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_report_on_a_damaged_posterior_exits_2(kind, tmp_path, capsys):
    path = small_fit(tmp_path / "fit")
    DAMAGE[kind](path)
    assert cli.main(["report", str(tmp_path / "fit")]) == 2
    assert str(path) in error_line(capsys, "report")
    assert not (tmp_path / "fit" / "report.html").exists()


def test_report_without_a_posterior_is_still_written(tmp_path, capsys):
    small_fit(tmp_path / "fit").unlink()
    assert cli.main(["report", str(tmp_path / "fit")]) == 0
    assert "posterior.nc not found" in (tmp_path / "fit" / "report.html").read_text()


@pytest.mark.parametrize("kind", ["truncated", "empty"])
def test_scenario_on_a_damaged_fit_exits_2(kind, tmp_path, capsys):
    path = small_fit(tmp_path / "fit")
    DAMAGE[kind](path)
    rc = cli.main(["scenario", "demo", "--fit", str(tmp_path / "fit"), "--out", str(tmp_path / "scen"), "--no-trade",
                   "--root", str(REPO)])
    assert rc == 2 and str(path) in error_line(capsys, "scenario")
    assert not (tmp_path / "scen").exists()


def test_sensitivity_on_a_damaged_baseline_exits_2(tmp_path, capsys):
    path = small_fit(tmp_path / "fit")
    DAMAGE["truncated"](path)
    rc = cli.main(["sensitivity", "demo", "--baseline", str(tmp_path / "fit"), "--out", str(tmp_path / "sens"),
                   "--only", "noise_x2", "--root", str(REPO), "--quick"])
    assert rc == 2 and str(path) in error_line(capsys, "sensitivity")
    assert not (tmp_path / "sens").exists()

