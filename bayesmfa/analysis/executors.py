"""Where sweeps run: pluggable executors with retries, and result files written as tasks finish.

An executor maps a function over items and yields ``(item, result)`` pairs in
completion order; a task that still fails after its retries yields
``(item, exception)`` instead of raising, so that one failed sweep never loses
the others. Two executors share this interface:

* :class:`LocalExecutor` -- in this process (``max_workers=1``) or in a
  :class:`concurrent.futures.ProcessPoolExecutor`;
* :class:`DaskExecutor` -- on a ``dask.distributed`` cluster (imported lazily;
  ``pip install 'bayesmfa[dask]'``).

:func:`run_tasks` writes each result (an :class:`xarray.Dataset`) to
``out_dir/<key>.nc`` atomically as it arrives and skips keys already on disk,
so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import xarray as xr

from bayesmfa.core.outputs import atomic_write


class Executor(Protocol):
    """What :func:`run_tasks` needs from an executor."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, fn(item))`` or ``(item, exception)`` in completion order."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a pool, a client it opened)."""
        ...


class _Portable:
    """A callable pickled with cloudpickle when available (lambdas and closures reach worker processes)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> Any:
        return self.fn(item)

    def __getstate__(self) -> dict:
        try:
            import cloudpickle

            return {"blob": cloudpickle.dumps(self.fn)}
        except ImportError:  # plain pickle: fn must be importable
            return {"blob": pickle.dumps(self.fn)}

    def __setstate__(self, state: dict) -> None:
        self.fn = pickle.loads(state["blob"])


def _worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: a fork server where the platform has one, else ``spawn`` (never a plain fork)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _call_with_retries(fn: Callable[[Any], Any], item: Any, retries: int) -> Any:
    """``fn(item)``, tried ``1 + retries`` times; the last exception is returned, not raised."""
    error: BaseException | None = None
    for _ in range(retries + 1):
        try:
            return fn(item)
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            error = exc
    return TaskFailed(repr(error), error)


@dataclass
class TaskFailed(Exception):
    """Returned (not raised) for a task that failed after every retry."""

    message: str
    error: BaseException | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.message


class LocalExecutor:
    """Run tasks here (``max_workers=1``) or in a pool of worker processes.

    Parameters
    ----------
    max_workers : int
        1 runs tasks one after another in this process; more uses a
        :class:`~concurrent.futures.ProcessPoolExecutor` (callables travel with
        cloudpickle when it is installed). Its workers are started by a fork
        server (``spawn`` where there is none), never forked from this process:
        PyMC may have loaded JAX, whose threads a forked child would inherit
        locked (a deadlock). A worker imports what its task needs afresh.
    retries : int
        Extra attempts for a failing task before it is reported.
    """

    def __init__(self, max_workers: int = 1, retries: int = 1) -> None:
        self.max_workers = max(1, int(max_workers))
        self.retries = int(retries)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, result or TaskFailed)`` as each task finishes."""
        items = list(items)
        if self.max_workers == 1:
            for item in items:
                yield item, _call_with_retries(fn, item, self.retries)
            return
        portable = _Portable(fn)
        with ProcessPoolExecutor(max_workers=self.max_workers, mp_context=_worker_context()) as pool:
            futures = {pool.submit(_call_with_retries, portable, item, self.retries): item for item in items}
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker crash is reported, not raised
                    result = TaskFailed(repr(exc), exc)
                yield futures[fut], result

    def close(self) -> None:
        """Nothing to release: a pool lives only while :meth:`map` runs."""


class DaskExecutor:
    """Run tasks on a ``dask.distributed`` scheduler.

    Parameters
    ----------
    address : str or distributed.Client or None
        Scheduler address (``tcp://host:8786``), an existing client, or
        ``None`` for a local cluster started by dask.
    retries : int
        Extra attempts for a failing task (dask's own task retries).
    """

    def __init__(self, address: Any = None, retries: int = 1) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("DaskExecutor needs dask.distributed: pip install 'bayesmfa[dask]'") from exc
        self.retries = int(retries)
        self._own = not isinstance(address, Client)
        self.client = Client(address) if self._own else address

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, result or TaskFailed)`` as each task finishes."""
        from distributed import as_completed as dask_completed

        items = list(items)
        futures = {}
        for i, item in enumerate(items):
            fut = self.client.submit(fn, item, retries=self.retries, pure=False, key=f"bayesmfa-task-{id(self)}-{i}")
            futures[fut.key] = (fut, item)
        for fut in dask_completed([f for f, _ in futures.values()]):
            item = futures[fut.key][1]
            if fut.status == "error":
                exc = fut.exception()
                yield item, TaskFailed(repr(exc), exc)
            else:
                yield item, fut.result()
            fut.release()

    def close(self) -> None:
        """Close the client if this executor opened it."""
        if self._own:
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(scheduler: str | None = None, max_workers: int = 1, retries: int = 1) -> Executor:
    """A :class:`DaskExecutor` for a scheduler address, else a :class:`LocalExecutor`."""
    if scheduler:
        return DaskExecutor(scheduler, retries=retries)
    return LocalExecutor(max_workers, retries=retries)


def result_path(out_dir: str | Path, key: str) -> Path:
    """File of one task's result: ``out_dir/<key>.nc``."""
    return Path(out_dir) / f"{key}.nc"


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a Dataset to netCDF atomically."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def read_dataset(path: str | Path) -> xr.Dataset:
    """Read a Dataset fully into memory (the file is not held open)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


@dataclass
class TaskReport:
    """What :func:`run_tasks` did.

    Attributes
    ----------
    results : dict
        Key -> Dataset of every task done (now or on an earlier run).
    failed : dict
        Key -> error message of every task that failed after its retries.
    skipped : list of str
        Keys found on disk and not rerun.
    """

    results: dict[str, xr.Dataset] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def run_tasks(
    fn: Callable[[Any], xr.Dataset],
    items: dict[str, Any],
    out_dir: str | Path,
    *,
    executor: Executor | None = None,
) -> TaskReport:
    """Run ``fn`` on every item and write each result to ``out_dir/<key>.nc`` as it finishes.

    Parameters
    ----------
    fn : callable
        Takes one item, returns an :class:`xarray.Dataset`.
    items : dict
        Key (a file-name-safe string) -> item.
    out_dir : str or Path
        Folder of the result files; keys already there are loaded, not rerun.
    executor : Executor, optional
        Default: ``LocalExecutor(1)``.

    Returns
    -------
    TaskReport
        Failures are listed (and written to ``out_dir/failures.json``), never raised.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = TaskReport()
    todo = {}
    for key, item in items.items():
        path = result_path(out_dir, key)
        if path.exists():
            report.results[key] = read_dataset(path)
            report.skipped.append(key)
        else:
            todo[key] = item
    executor = executor or LocalExecutor(1)
    keyed = list(todo.items())
    for (key, _), result in executor.map(_Keyed(fn), keyed):
        if isinstance(result, BaseException):
            report.failed[key] = str(result)
            continue
        write_dataset(result, result_path(out_dir, key))
        report.results[key] = result
    failures = out_dir / "failures.json"
    if report.failed:
        atomic_write(failures, lambda tmp: tmp.write_text(json.dumps(report.failed, indent=2)))
    elif failures.exists():
        failures.unlink()
    report.results = {k: report.results[k] for k in items if k in report.results}
    return report


class _Keyed:
    """Apply ``fn`` to the item of a ``(key, item)`` pair."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = _Portable(fn)

    def __call__(self, pair: tuple[str, Any]) -> Any:
        return self.fn(pair[1])
