"""Result folders: the marker that makes a folder bayesmfa's, the ``--out`` check, and atomic staging.

Every folder a command writes (``run``, ``scenario``, ``sensitivity``) holds a
small manifest, :data:`MARKER`, with its kind, the package version and the
creation time. ``--out`` replaces only a folder holding a marker of the same
kind, an empty folder or a path that does not exist; anything else (a folder
of other files, a regular file, a symlink to something else) is refused with
:class:`~bayesmfa.errors.OutputError` unless ``force``.

A result is written into a staging folder ``.NAME.tmp-<pid>-<random>`` beside
``NAME`` and swapped into place when complete; the earlier result is moved to
``.NAME.old-<pid>-<ns>`` and removed. Staging folders left by a killed run
(their process is gone) are removed by the next run into the same place.
Folders and files get the usual permissions (``0o777``/``0o666`` less the
process umask), not the private ones of :mod:`tempfile`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bayesmfa.errors import OutputError

#: File name of the manifest that marks a folder as a bayesmfa result.
MARKER = ".bayesmfa-result.json"
#: Kinds of result folder.
KINDS = ("run", "scenario", "sensitivity")


# ---------------------------------------------------------------------------- permissions


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Write a file through ``writer(tmp_path)`` then rename it into place.

    A failure leaves any earlier file at ``path`` untouched. The file gets the
    usual permissions (``0o666`` less the umask), not the private ones of
    :func:`tempfile.mkstemp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process umask (read without changing it where the system allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def dir_mode() -> int:
    """Mode of a new folder under the process umask (``0o777 & ~umask``)."""
    return 0o777 & ~current_umask()


def file_mode() -> int:
    """Mode of a new file under the process umask (``0o666 & ~umask``)."""
    return 0o666 & ~current_umask()


# ---------------------------------------------------------------------------- the marker


def write_marker(folder: str | Path, kind: str) -> Path:
    """Write the manifest that marks ``folder`` as a bayesmfa result of ``kind``.

    Parameters
    ----------
    folder : str or Path
        An existing folder.
    kind : {"run", "scenario", "sensitivity"}
        What the folder holds.

    Returns
    -------
    Path
        The marker file.
    """
    from bayesmfa._version import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r}; known: {list(KINDS)}")
    doc = {"kind": kind, "bayesmfa_version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    path = Path(folder) / MARKER
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a result folder, or ``None`` when ``folder`` holds no valid one."""
    path = Path(folder) / MARKER
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
        return None
    return doc


# ---------------------------------------------------------------------------- the --out check


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _describe(path: Path, kind: str) -> str | None:
    """Why ``path`` may not be replaced by a ``kind`` result (``None`` when it may)."""
    if not os.path.lexists(path) or _is_empty_dir(path):
        return None
    if path.is_symlink():
        return "a symlink"
    if not path.is_dir():
        return "a file"
    marker = read_marker(path)
    if marker is None:
        return f"a folder that is not a bayesmfa result (it holds no {MARKER})"
    if marker["kind"] != kind:
        return f"a bayesmfa {marker['kind']} result"
    return None


def _guard(path: Path) -> None:
    """Refuse, even with ``force``, a path whose replacement would pull the ground from under the caller."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    try:
        home = Path.home().resolve()
    except RuntimeError:  # no home folder known
        home = None
    if resolved == cwd or resolved in cwd.parents or resolved == home:
        raise OutputError(f"{path}: refusing to replace the current folder, one of its parents or the home folder")


def check_out(out: str | Path, kind: str, *, force: bool = False) -> Path:
    """Check that ``out`` may receive a ``kind`` result; return the path to write.

    ``out`` may be a path that does not exist, an empty folder or a folder
    marked as a ``kind`` result; a symlink to such a folder is followed (the
    folder it points to is replaced, the link kept). With ``force`` anything
    else is accepted too (a symlink itself is then replaced, never its target)
    except the current folder, its parents and the home folder.

    Parameters
    ----------
    out : str or Path
        The requested result path.
    kind : {"run", "scenario", "sensitivity"}
        The result about to be written.
    force : bool
        Replace whatever is at ``out``.

    Returns
    -------
    Path
        Where the result goes (``out``, or the folder a symlink points to).

    Raises
    ------
    OutputError
        When ``out`` holds something else and ``force`` is false.
    """
    out = Path(out)
    if out.is_symlink() and out.is_dir() and _describe(out.resolve(), kind) is None:
        out = out.resolve()
    why = _describe(out, kind)
    if why is not None and not force:
        raise OutputError(
            f"{out}: refusing to replace {why}; --out replaces only an earlier bayesmfa {kind} result, "
            "an empty folder or a new path (--force replaces it anyway)"
        )
    _guard(out)
    return out


# ---------------------------------------------------------------------------- staging


def _staging_pattern(name: str) -> re.Pattern[str]:
    """``.NAME.tmp-<pid>-<random>``, ``.NAME.old-<pid>-<ns>`` and the older ``.NAME.tmp-<random>``, ``.NAME.old-<ns>``."""
    return re.compile(rf"^\.{re.escape(name)}\.(?P<stage>tmp|old)-(?:(?P<pid>\d+)-)?(?P<tail>[a-z0-9_]+)$")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (unknown counts as alive)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def stale_staging(out: str | Path) -> list[Path]:
    """Staging folders of earlier writes to ``out`` whose process is gone.

    Only real folders named like bayesmfa's staging folders count: a
    ``.tmp-`` folder (a write that never finished), or an ``.old-`` folder
    holding a result marker (an earlier result whose removal never finished).
    Folders whose name carries the id of a running process are left alone.
    """
    out = Path(out)
    pattern = _staging_pattern(out.name)
    if not out.parent.is_dir():
        return []
    stale = []
    for entry in out.parent.iterdir():
        match = pattern.match(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        if match["pid"] is not None and _alive(int(match["pid"])):
            continue
        if match["stage"] == "old" and read_marker(entry) is None:
            continue  # something a --force run moved aside: not provably ours
        stale.append(entry)
    return sorted(stale)


def remove_stale(out: str | Path) -> list[Path]:
    """Remove :func:`stale_staging` folders beside ``out``; return what was removed."""
    removed = stale_staging(out)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the complete folder ``tmp`` to ``out``, replacing what is there (a folder, file or symlink).

    The earlier ``out`` is first renamed to ``.NAME.old-<pid>-<ns>`` and
    restored when the final rename fails; it is removed once ``tmp`` is in place.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if os.path.lexists(out):
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{time.time_ns()}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        _remove(old)


@dataclass
class Stage:
    """A result folder being written.

    Attributes
    ----------
    path : Path
        The staging folder to write into (already holds the marker).
    target : Path
        Where ``path`` goes when the block completes; may be redirected with :meth:`redirect`.
    kind : str
        The result kind.
    force : bool
        Whether the target may be replaced whatever it holds.
    """

    path: Path
    target: Path
    kind: str
    force: bool = False

    def redirect(self, target: str | Path) -> Path:
        """Send the result to ``target`` instead (checked as ``--out`` is); return the path it will go to."""
        self.target = check_out(target, self.kind, force=self.force)
        return self.target


def make_dir(path: Path) -> Path:
    """A new folder with the umask's permissions (``tempfile`` would make it private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    tmp.chmod(dir_mode())
    return tmp


@contextmanager
def staged_dir(out: str | Path, kind: str, *, force: bool = False) -> Iterator[Stage]:
    """A marked staging folder beside ``out``, moved into place when the block completes.

    ``out`` is checked first (:func:`check_out`), stale staging folders beside
    it are removed, and on any failure the staging folder is removed and an
    earlier ``out`` is left untouched.

    Parameters
    ----------
    out : str or Path
        Result folder.
    kind : {"run", "scenario", "sensitivity"}
        What is written (the marker's kind).
    force : bool
        Replace whatever is at ``out``.

    Yields
    ------
    Stage
        Write into ``stage.path``.
    """
    target = check_out(out, kind, force=force)
    remove_stale(target)
    stage = Stage(make_dir(target), target, kind, force)
    try:
        write_marker(stage.path, kind)
        yield stage
        final = check_out(stage.target, kind, force=force)  # anything may have appeared there meanwhile
        if final != target:  # redirected
            remove_stale(final)
            stage.path = _beside(stage.path, final)
        replace_dir(stage.path, final)
        stage.target = final
    except BaseException:
        shutil.rmtree(stage.path, ignore_errors=True)
        raise


def _beside(tmp: Path, target: Path) -> Path:
    """The staging folder ``tmp`` moved next to ``target`` (a rename only works within one file system)."""
    if tmp.parent.resolve() == target.parent.resolve():
        return tmp
    moved = make_dir(target)
    try:
        for entry in tmp.iterdir():
            shutil.move(str(entry), str(moved / entry.name))
    except BaseException:
        shutil.rmtree(moved, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return moved


def open_incremental(out: str | Path, kind: str, *, force: bool = False) -> Path:
    """Make ``out`` ready for results written one by one: resume a folder of this kind, else start a marked one.

    A folder marked with ``kind`` is kept as it is (a rerun resumes); a path
    that does not exist or an empty folder becomes a new marked folder; with
    ``force`` anything else is replaced by one.

    Returns
    -------
    Path
        The folder to write into.
    """
    target = check_out(out, kind, force=force)
    marker = read_marker(target) if target.is_dir() and not target.is_symlink() else None
    if marker is not None and marker["kind"] == kind:
        remove_stale(target)
        return target
    with staged_dir(target, kind, force=force) as stage:
        pass
    return stage.target


__all__ = [
    "KINDS",
    "MARKER",
    "Stage",
    "check_out",
    "current_umask",
    "dir_mode",
    "file_mode",
    "open_incremental",
    "read_marker",
    "remove_stale",
    "replace_dir",
    "stale_staging",
    "staged_dir",
    "write_marker",
]
