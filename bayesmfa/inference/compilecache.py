"""On-disk cache of nutpie-compiled models, so that a second process does not compile the same model again.

nutpie compiles a PyMC model into two numba C callbacks (log density with
gradient, and the expansion of a draw into the stored variables). For the REE
model that takes about 20 s in every new process, even with numba's and
PyTensor's own on-disk caches warm: about 16 s go to numba typing and LLVM
optimising the callbacks (the PyTensor functions and the fused kernel are
inlined into them, and numba cannot cache the callbacks, whose closures differ
in every process), 3-4 s to PyTensor's graph rewriting, 1 s to the initial point
function.

This module stores the callbacks' machine code (numba's own serialisation of a
code library: object code plus the bitcode numba links against, the format of
numba's ``cache=True``) with the little else nutpie needs (sizes, variable
names and shapes), and on a later run rebuilds the compiled model from it and
from the PyMC model, which is cheap to build: initial point function,
dims and coords are made by nutpie's own helpers exactly as
:func:`nutpie.compile_pymc_model` makes them, so the same seed gives the same
draws whether the model was compiled or loaded.

An entry's name is a hash of everything the machine code depends on: the
problem's content hash (system, priors, records, model options), fused or not,
the stored variables, the versions of Python, bayesmfa, PyMC, PyTensor, nutpie,
numba, llvmlite and NumPy, the kernel version, a hash of bayesmfa's source
files, the CPU (numba's target triple, CPU name and features) and the PyTensor
and numba settings that change generated code. A changed input gives a new
entry; an old one is never read again.

Entries are written atomically (a temporary file in the same folder, then
renamed) and carry a SHA-256 of their contents, checked before the machine
code is loaded; an entry that is unreadable, corrupt, for another key or
fails to load is ignored and the model is compiled (and the entry rewritten).
Nothing is stored when the compiled code holds process-specific addresses
(numba's "dynamic globals"), when the model has shared data, or when the
rebuilt model does not match the freshly compiled one (a check run before each
store). The files are plain data (a JSON header and raw bytes): loading one
runs no pickle.

Folder: ``$BAYESMFA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/bayesmfa`` or
``~/.cache/bayesmfa``, subfolder ``nutpie``. ``BAYESMFA_COMPILE_CACHE=0``
turns the cache off. After each store the entries beyond
``$BAYESMFA_COMPILE_CACHE_MB`` megabytes (default 1024; an REE entry is about
4 MB, the demo's 2 MB) are removed, least recently used first, and
:func:`clear` removes them all; both touch only this module's entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder (its ``nutpie`` subfolder holds the entries).
ENV_DIR = "BAYESMFA_CACHE_DIR"
#: Environment variable that turns the cache off when set to 0, off, false or no.
ENV_SWITCH = "BAYESMFA_COMPILE_CACHE"
#: Environment variable: the most megabytes of entries kept (least recently used removed first; default 1024).
ENV_MAX_MB = "BAYESMFA_COMPILE_CACHE_MB"
#: Bump when the entry format or what is rebuilt from it changes.
FORMAT = 1
MAGIC = b"bayesmfa-nutpie-cache\n"
SUFFIX = ".nutpie"
_FUNCS = ("logp", "expand")


def enabled() -> bool:
    """Whether the on-disk cache is on (``BAYESMFA_COMPILE_CACHE`` is not 0, off, false or no)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in {"0", "off", "false", "no"}


def cache_dir() -> Path:
    """The folder of the compiled-model entries (not created here)."""
    root = os.environ.get(ENV_DIR)
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "bayesmfa"
    return base / "nutpie"


@lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """SHA-256 over the package's Python source files (names and contents)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def key_fields(content_hash: str, *, fused: bool, var_names: list[str]) -> dict[str, Any]:
    """Everything the compiled machine code depends on, as a JSON-ready dict.

    Parameters
    ----------
    content_hash : str
        :meth:`bayesmfa.core.problem.Problem.content_hash` of the problem with the model options.
    fused : bool
        Whether the model is the fused-kernel model.
    var_names : list of str
        The variables the sampler stores.

    Returns
    -------
    dict
        Key fields; :func:`entry_key` hashes them.
    """
    import pytensor
    from numba.core import config as numba_config
    from numba.core.registry import cpu_target

    from bayesmfa._version import __version__
    from bayesmfa.core.fusedop import KERNEL_VERSION

    packages = ("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy")
    return {
        "format": FORMAT,
        "content_hash": content_hash,
        "fused": bool(fused),
        "var_names": list(var_names),
        "python": sys.version,
        "platform": platform.platform(),
        "versions": {"bayesmfa": __version__, **{p: _version(p) for p in packages}},
        "kernel_version": KERNEL_VERSION,
        "source": source_fingerprint(),
        "target": [str(x) for x in cpu_target.target_context.codegen().magic_tuple()],
        "settings": {
            "floatX": pytensor.config.floatX,
            "numba__fastmath": bool(pytensor.config.numba__fastmath),
            "numba_opt": str(numba_config.OPT),
            "numba_boundscheck": str(numba_config.BOUNDSCHECK),
        },
    }


def entry_key(fields: dict[str, Any]) -> str:
    """SHA-256 of :func:`key_fields` (the entry's file name)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class LoadedCallback:
    """A numba C callback loaded from the cache: its code library (kept alive) and address.

    Stands in for :class:`numba.core.ccallback.CFunc` in nutpie's compiled
    model, which uses only ``address``.
    """

    def __init__(self, library: Any, symbol: str) -> None:
        self._library = library
        self.native_name = symbol
        self.address = library.get_pointer_to_function(symbol)
        if not self.address:
            raise RuntimeError(f"symbol {symbol} not found in the cached library")

    def __repr__(self) -> str:
        return f"<cached numba C callback {self.native_name[:60]}...>"


def assemble(model: Any, meta: dict[str, Any], logp: Any, expand: Any) -> Any:
    """nutpie's compiled model of ``model`` with the given callbacks, the rest made as nutpie makes it.

    Mirrors :func:`nutpie.compile_pymc_model` (numba backend, default
    arguments): the initial point function (support point with jitter on every
    free variable), dims and coords come from ``model`` through nutpie's own
    helpers; sizes and shapes from ``meta`` (see :func:`_meta`).

    Parameters
    ----------
    model : pymc.Model
        The model the callbacks were compiled from.
    meta : dict
        ``n_dim``, ``n_expanded``, ``names``, ``slices``, ``shapes``.
    logp, expand
        Objects with an ``address`` (the C callbacks).

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
    """
    from nutpie import compile_pymc as npc
    from pymc.initial_point import make_initial_point_fn

    names = list(meta["names"])
    slices = [slice(np.int64(a), np.int64(b)) for a, b in meta["slices"]]
    shapes = [np.asarray(s, dtype=np.int64) for s in meta["shapes"]]
    shape_info = (names, slices, shapes)
    free = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    if names[: len(free)] != free:
        raise ValueError("the cached entry's variables are not the model's")
    point_fn = make_initial_point_fn(model=model, overrides=None, default_strategy="support_point",
                                     jitter_rvs=set(model.free_RVs), return_transformed=True)
    point_fn = npc._rv_dict_to_flat_array_wrapper(npc._wrap_with_lock(point_fn), names=free, shapes=shapes[: len(free)])
    dims, coords = npc._prepare_dims_and_coords(model, shape_info)
    return npc.CompiledPyMCModel(
        _n_dim=int(meta["n_dim"]), dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, shape in zip(names, shapes, strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand, initial_point_func=point_fn, shared_data={},
        user_data=npc.make_user_data({}, {}), n_expanded=int(meta["n_expanded"]), shape_info=shape_info,
        logp_func=None, expand_func=None,
    )


def _meta(compiled: Any) -> dict[str, Any]:
    """Sizes, names and shapes of a compiled model, JSON-ready."""
    names, slices, shapes = compiled.shape_info
    return {
        "n_dim": int(compiled.n_dim),
        "n_expanded": int(compiled.n_expanded),
        "names": [str(n) for n in names],
        "slices": [[int(s.start), int(s.stop)] for s in slices],
        "shapes": [[int(x) for x in np.asarray(s).ravel()] for s in shapes],
    }


def _same(fresh: Any, rebuilt: Any) -> str | None:
    """Why ``rebuilt`` differs from the freshly compiled ``fresh`` (None when it does not)."""
    if fresh.n_dim != rebuilt.n_dim or fresh.n_expanded != rebuilt.n_expanded:
        return "sizes"
    if list(fresh.shape_info[0]) != list(rebuilt.shape_info[0]) or fresh.shapes != rebuilt.shapes:
        return "variables"
    if dict(fresh.dims or {}) != dict(rebuilt.dims or {}):
        return "dims"
    if set(fresh.coords) != set(rebuilt.coords) or any(not fresh.coords[k].equals(rebuilt.coords[k]) for k in fresh.coords):
        return "coords"
    for seed in (0, 12345):
        if not np.array_equal(fresh.initial_point_func(seed), rebuilt.initial_point_func(seed)):
            return "initial points"
    return None


def _path(key: str) -> Path:
    return cache_dir() / f"{key}{SUFFIX}"


def store(key: str, fields: dict[str, Any], compiled: Any, model: Any) -> bool:
    """Write the entry of a freshly compiled model, if it can be reused safely; whether it was written.

    Parameters
    ----------
    key : str
        :func:`entry_key` of ``fields``.
    fields : dict
        :func:`key_fields` (stored in the header, checked on load).
    compiled : nutpie compiled model
        Just compiled by :func:`nutpie.compile_pymc_model` from ``model``.
    model : pymc.Model
        The model.

    Returns
    -------
    bool
        False when the model is not cacheable or the folder not writable (never raises).
    """
    try:
        if compiled.shared_data:
            log.debug("not cached: the model has shared data")
            return False
        funcs = {"logp": compiled.compiled_logp_func, "expand": compiled.compiled_expand_func}
        if any(f._library.has_dynamic_globals for f in funcs.values()):
            log.debug("not cached: the compiled code holds process-specific addresses")
            return False
        meta = _meta(compiled)
        why = _same(compiled, assemble(model, meta, *funcs.values()))
        if why is not None:
            log.warning("compiled model not cached: rebuilding it from its parts gives other %s", why)
            return False
        blobs: list[bytes] = []
        for name, f in funcs.items():
            lib_name, kind, (obj, bitcode) = f._library.serialize_using_object_code()
            if kind != "object":
                return False
            meta[name] = {"library": lib_name, "symbol": f.native_name, "blobs": [len(blobs), len(blobs) + 1]}
            blobs += [bytes(obj), bytes(bitcode)]
        body = b"".join(blobs)
        header = {"format": FORMAT, "key": key, "fields": fields, "meta": meta, "sizes": [len(b) for b in blobs],
                  "sha256": hashlib.sha256(body).hexdigest()}
        _write_atomic(_path(key), MAGIC + _frame(json.dumps(header).encode()) + body)
        prune()
        return True
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is no cache, not an error
        log.debug("compiled model not cached: %s", exc)
        return False


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # the temporary file this function created
        raise


def _read(key: str) -> tuple[dict[str, Any], list[bytes]] | None:
    """Header and blobs of the entry ``key``, or None when missing, unreadable, corrupt or another key's."""
    path = _path(key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.debug("cache entry %s unreadable: %s", path, exc)
        return None
    try:
        if not data.startswith(MAGIC):
            raise ValueError("not a cache entry")
        pos = len(MAGIC)
        n = int.from_bytes(data[pos:pos + 8], "little")
        header = json.loads(data[pos + 8:pos + 8 + n])
        body = data[pos + 8 + n:]
        if header.get("format") != FORMAT or header.get("key") != key:
            raise ValueError("another format or key")
        if hashlib.sha256(body).hexdigest() != header["sha256"] or sum(header["sizes"]) != len(body):
            raise ValueError("checksum mismatch")
        offsets = np.cumsum([0, *header["sizes"]])
        blobs = [body[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    except Exception as exc:  # noqa: BLE001 - a bad entry is ignored and rewritten
        log.warning("ignoring corrupt compile cache entry %s (%s); compiling", path, exc)
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return header, blobs


def load(key: str, model: Any) -> Any | None:
    """The compiled model of entry ``key``, rebuilt for ``model``, or None (missing or unusable entry).

    Parameters
    ----------
    key : str
        :func:`entry_key` of the model's :func:`key_fields`.
    model : pymc.Model
        The model the entry was compiled from (the same problem and options).

    Returns
    -------
    nutpie compiled model or None
    """
    found = _read(key)
    if found is None:
        return None
    header, blobs = found
    try:
        from numba.core.registry import cpu_target

        codegen = cpu_target.target_context.codegen()
        meta = header["meta"]
        funcs = []
        for name in _FUNCS:
            info = meta[name]
            obj, bitcode = (blobs[i] for i in info["blobs"])
            library = codegen.unserialize_library((info["library"], "object", (obj, bitcode)))
            funcs.append(LoadedCallback(library, info["symbol"]))
        return assemble(model, meta, *funcs)
    except Exception as exc:  # noqa: BLE001 - an unusable entry is ignored and rewritten
        log.warning("ignoring unusable compile cache entry %s (%s); compiling", _path(key), exc)
        return None


def compiled_model(model: Any, content_hash: str, *, fused: bool, var_names: list[str],
                   compile_fn: Callable[[], Any]) -> tuple[Any, str]:
    """The compiled model of ``model``: loaded from the cache, or compiled with ``compile_fn`` and stored.

    Parameters
    ----------
    model : pymc.Model
        The model, built from the problem and options ``content_hash`` covers.
    content_hash : str
        The problem's content hash with the model options.
    fused : bool
        Whether ``model`` is the fused-kernel model.
    var_names : list of str
        The variables the sampler stores.
    compile_fn : callable
        Compiles ``model`` with :func:`nutpie.compile_pymc_model`.

    Returns
    -------
    compiled : nutpie compiled model
    state : {"hit", "miss", "off"}
        Loaded from disk; compiled (and stored when it can be); compiled with the cache off.
    """
    if not enabled():
        return compile_fn(), "off"
    try:
        fields = key_fields(content_hash, fused=fused, var_names=var_names)
        key = entry_key(fields)
    except Exception as exc:  # noqa: BLE001
        log.debug("compile cache off for this model: %s", exc)
        return compile_fn(), "off"
    loaded = load(key, model)
    if loaded is not None:
        return loaded, "hit"
    compiled = compile_fn()
    store(key, fields, compiled, model)
    return compiled, "miss"


def entries() -> list[Path]:
    """This module's entries in :func:`cache_dir`: files ``<64 hex digits>.nutpie`` that start with its header."""
    folder = cache_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        stem = path.name[: -len(SUFFIX)]
        if len(stem) != 64 or any(c not in "0123456789abcdef" for c in stem):
            continue
        try:
            with path.open("rb") as fh:
                if fh.read(len(MAGIC)) == MAGIC:
                    found.append(path)
        except OSError:
            continue
    return found


def prune(max_bytes: int | None = None) -> int:
    """Remove the least recently used entries beyond ``max_bytes`` in all; the number removed.

    Parameters
    ----------
    max_bytes : int, optional
        Size cap; by default ``$BAYESMFA_COMPILE_CACHE_MB`` megabytes (1024).

    Returns
    -------
    int
        Number of entries removed (only this module's, see :func:`entries`).
    """
    if max_bytes is None:
        try:
            max_bytes = int(float(os.environ.get(ENV_MAX_MB, "1024")) * 2**20)
        except ValueError:
            max_bytes = 2**30
    stats = []
    for path in entries():
        try:
            st = path.stat()
        except OSError:
            continue
        stats.append((st.st_mtime, st.st_size, path))
    stats.sort(reverse=True)  # newest first
    total, stale = 0, []
    for _, size, path in stats:
        total += size
        if total > max_bytes:
            stale.append(path)
    return _remove(stale)


def clear() -> int:
    """Remove all of this module's entries (see :func:`entries`); the number removed."""
    return _remove(entries())


def _remove(paths: Iterable[Path]) -> int:
    """Unlink ``paths`` (entries of this module), skipping those that cannot be removed; the number removed."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except OSError:
            continue
    return removed
