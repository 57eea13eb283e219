"""The on-disk cache of compiled models: a loaded model samples exactly as a compiled one; bad entries are ignored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bayesmfa as bm
from bayesmfa.core.model import ModelOptions, build_model
from bayesmfa.inference import compilecache
from bayesmfa.inference import sampling as inference
from bayesmfa.inference.sampling import sampled_names

pytest.importorskip("nutpie")

FIT = {"draws": 60, "tune": 80, "chains": 2, "seed": 11, "prior_draws": 0, "backend": "nutpie"}


def _fit(problem: bm.Problem) -> Any:
    return bm.fit(problem, **FIT)


@pytest.fixture(scope="module")
def first(demo_problem: bm.Problem, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fit of the demo compiled afresh into an empty cache folder (the cold compile, once per module)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(compilecache.ENV_DIR, str(folder))
        mp.delenv(compilecache.ENV_SWITCH, raising=False)
        mp.setattr(inference, "_COMPILED", {})
        idata = _fit(demo_problem)
        compiled = next(iter(inference._COMPILED.values()))
    return {"folder": folder, "idata": idata, "compiled": compiled}


@pytest.fixture
def cache(first: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's cache folder in the environment, and no compiled model in memory."""
    monkeypatch.setenv(compilecache.ENV_DIR, str(first["folder"]))
    monkeypatch.delenv(compilecache.ENV_SWITCH, raising=False)
    monkeypatch.setattr(inference, "_COMPILED", {})
    return first["folder"] / "nutpie"


def _key(problem: bm.Problem) -> tuple[str, dict[str, Any], Any]:
    model = build_model(problem, ModelOptions(), fused=True)
    fields = compilecache.key_fields(problem.content_hash(ModelOptions().as_dict()), fused=True, var_names=sampled_names(model))
    return compilecache.entry_key(fields), fields, model


def test_second_fit_loads_the_model_and_draws_the_same(first: dict[str, Any], cache: Path, demo_problem: bm.Problem) -> None:
    cold = json.loads(first["idata"].posterior.attrs["settings"])
    assert cold["compile_cache"] == "miss"
    assert len(compilecache.entries()) == 1
    idata = _fit(demo_problem)
    warm = json.loads(idata.posterior.attrs["settings"])
    assert warm["compile_cache"] == "hit"
    assert warm["compile_s"] < cold["compile_s"]
    post, ref = idata.posterior, first["idata"].posterior
    assert set(post.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(post[name].values, ref[name].values, err_msg=name)
    np.testing.assert_array_equal(idata.sample_stats["step_size"].values, first["idata"].sample_stats["step_size"].values)


def test_same_process_refit_uses_memory(cache: Path, demo_problem: bm.Problem) -> None:
    status: dict[str, str] = {}
    inference.compiled_nutpie(demo_problem, ModelOptions(), fused=True, status=status)
    assert status["compile_cache"] == "hit"
    _, seconds = inference.compiled_nutpie(demo_problem, ModelOptions(), fused=True, status=status)
    assert status["compile_cache"] == "memory" and seconds == 0.0


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "other_key", "empty"])
def test_bad_entry_is_ignored_then_rewritten(first: dict[str, Any], cache: Path, demo_problem: bm.Problem, damage: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    key, fields, model = _key(demo_problem)
    path = cache / f"{key}{compilecache.SUFFIX}"
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        path.write_bytes(good[:-100] + bytes([good[-100] ^ 0xFF]) + good[-99:])
    elif damage == "garbage":
        path.write_bytes(compilecache.MAGIC + b"\xff" * 64)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid entry of another key under this key's name
        other = "0" * 64
        header_len = int.from_bytes(good[len(compilecache.MAGIC):len(compilecache.MAGIC) + 8], "little")
        start = len(compilecache.MAGIC) + 8
        header = json.loads(good[start:start + header_len])
        header["key"] = other
        raw = json.dumps(header).encode()
        path.write_bytes(compilecache.MAGIC + len(raw).to_bytes(8, "little") + raw + good[start + header_len:])
    try:
        assert compilecache.load(key, model) is None
        compiled, state = compilecache.compiled_model(model, fields["content_hash"], fused=True, var_names=fields["var_names"],
                                                      compile_fn=lambda: first["compiled"])
        assert state == "miss" and compiled is first["compiled"]
        assert path.read_bytes() == good  # rewritten from the same compiled code
        assert compilecache.load(key, model) is not None
    finally:
        path.write_bytes(good)


def test_cache_off_and_unwritable_folder(first: dict[str, Any], demo_problem: bm.Problem, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    key, fields, model = _key(demo_problem)
    kw = {"fused": True, "var_names": fields["var_names"], "compile_fn": lambda: first["compiled"]}
    monkeypatch.setenv(compilecache.ENV_SWITCH, "0")
    assert compilecache.compiled_model(model, fields["content_hash"], **kw)[1] == "off"
    monkeypatch.delenv(compilecache.ENV_SWITCH)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(compilecache.ENV_DIR, str(blocker))
    assert compilecache.compiled_model(model, fields["content_hash"], **kw)[1] == "miss"
    assert blocker.read_text() == "not a folder"


def test_key_changes_with_what_the_code_depends_on(demo_problem: bm.Problem) -> None:
    h = demo_problem.content_hash(ModelOptions().as_dict())
    base = compilecache.key_fields(h, fused=True, var_names=["a"])
    assert compilecache.entry_key(base) == compilecache.entry_key(compilecache.key_fields(h, fused=True, var_names=["a"]))
    others = [compilecache.key_fields(h, fused=False, var_names=["a"]), compilecache.key_fields(h, fused=True, var_names=["b"]),
              compilecache.key_fields(demo_problem.content_hash({"x": 1}), fused=True, var_names=["a"])]
    assert len({compilecache.entry_key(f) for f in [base, *others]}) == 4
    assert {"pymc", "pytensor", "nutpie", "numba", "bayesmfa"} <= set(base["versions"])
    assert base["kernel_version"] and base["source"] and base["target"]


def test_clear_and_prune_touch_only_entries(first: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compilecache.ENV_DIR, str(tmp_path))
    folder = tmp_path / "nutpie"
    folder.mkdir()
    entry = next(iter(Path(first["folder"], "nutpie").glob("*.nutpie")))
    for i in range(3):
        shutil.copy(entry, folder / f"{i:064x}.nutpie")
    foreign = [folder / "notes.txt", folder / f"{'f' * 64}.nutpie", tmp_path / "other.nutpie"]
    for path in foreign:
        path.write_bytes(b"someone else's file")
    assert len(compilecache.entries()) == 3
    assert compilecache.prune(max_bytes=entry.stat().st_size + 1) == 2
    assert len(compilecache.entries()) == 1
    assert compilecache.clear() == 1
    assert compilecache.entries() == [] and all(p.exists() for p in foreign)
