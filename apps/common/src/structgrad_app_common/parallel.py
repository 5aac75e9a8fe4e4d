"""The joblib runner of the sweeps: on this machine, or on a Dask cluster.

Trials run through joblib: local processes (``loky``) by default, ``threading``
or ``multiprocessing``; or, given the address of a Dask scheduler, on that
cluster through joblib's ``dask`` backend (``pip install "dask[distributed]"``).
Results are handed back as they finish (``on_result``) and returned in task order.
A SIGTERM or SIGHUP to the sweep ends its local workers too (they kept training),
and a local worker whose sweep was killed (SIGKILL, out of memory) ends itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from structgrad_app_common.checkpoint import first_line
from structgrad_app_common.cli import CLIError

__all__ = [
    "CONNECT_TIMEOUT",
    "DASK_INSTALL",
    "LOCAL_BACKENDS",
    "WORKER_TIMEOUT",
    "dask_client",
    "ending_workers_on_signals",
    "require_dask",
    "run_parallel",
    "run_trials",
]

#: The joblib backends that run trials on this machine (a cluster: a Dask scheduler).
LOCAL_BACKENDS = ("loky", "threading", "multiprocessing")
#: Seconds to wait for a Dask scheduler to answer.
CONNECT_TIMEOUT = 30
#: Seconds joblib waits for a first Dask worker (batch jobs may be queued).
WORKER_TIMEOUT = 600
DASK_INSTALL = 'pip install "dask[distributed]"'


def require_dask() -> None:
    """A one-line error unless ``dask.distributed`` can be imported.

    Raises:
        CLIError: ``--scheduler needs Dask: pip install "dask[distributed]"``.
    """
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise CLIError(f"--scheduler needs Dask's distributed scheduler: {DASK_INSTALL}") from None


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A ``dask.distributed.Client`` of the scheduler at ``address``, closed on exit.

    Raises:
        CLIError: Dask is not installed, or no scheduler answered at ``address``.
    """
    require_dask()
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as err:  # refused, timed out, a malformed address or protocol
        raise CLIError(
            f"--scheduler {address}: no Dask scheduler answered ({first_line(err)})"
        ) from None
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def ending_workers_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into ``SystemExit(128 + signal)`` while the block runs.

    joblib aborts on any exception raised while it waits, which for ``loky``
    and ``multiprocessing`` kills the worker processes; a bare SIGTERM would
    end this process alone and leave them training into the run folders that
    a ``--resume`` started next would use. Outside the main thread (where
    Python cannot set handlers) the block runs unchanged. SIGKILL cannot be
    caught: the workers of a killed sweep end themselves (:func:`_end_with_parent`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    owner = os.getpid()

    def stop(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            # A forked worker (multiprocessing) inherited this handler: it dies
            # of the signal, as its pool expects when it terminates it.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise SystemExit(128 + signum)

    kinds = (signal.SIGTERM, signal.SIGHUP)
    previous = {kind: signal.signal(kind, stop) for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)


#: Seconds between a local worker's checks that its sweep is alive.
PARENT_POLL = 1.0
_watched: set[int] = set()


def _end_with_parent(sweep: int) -> None:
    """In a local worker process of the sweep ``sweep`` (a pid), exit once the sweep is gone.

    A killed process cannot stop its children, and joblib's workers would train
    on into the run folders of a ``--resume``; the worker is reparented when its
    sweep dies, so a daemon thread polls the parent pid. Threads of the sweep
    itself and Dask workers (whose parent is not the sweep) are left alone.
    """
    if os.getppid() != sweep or sweep in _watched:
        return
    _watched.add(sweep)

    def watch() -> None:
        while os.getppid() == sweep:
            time.sleep(PARENT_POLL)
        os._exit(1)  # no cleanup: the trial's checkpoints are written atomically

    threading.Thread(target=watch, name="end-with-sweep", daemon=True).start()


def _indexed(
    index: int, fn: Callable[..., Any], task: Mapping[str, Any], sweep: int
) -> tuple[int, Any]:
    """``(index, fn(**task))``: a result that names its task (results come as they finish)."""
    _end_with_parent(sweep)
    return index, fn(**task)


def run_parallel(
    fn: Callable[..., Any],
    tasks: Sequence[Mapping[str, Any]],
    *,
    n_jobs: int = 2,
    backend: str = "loky",
    verbose: int = 0,
    scheduler: str | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``fn(**task)`` for every task through joblib, results in task order.

    Args:
        fn: a picklable (module-level) function.
        tasks: keyword arguments of each call.
        n_jobs: parallel workers (``-1``: all cores); on a Dask cluster every
            worker thread takes tasks, whatever ``n_jobs``.
        backend: a joblib backend name; ``loky`` runs local processes.
        verbose: joblib verbosity.
        scheduler: the address of a Dask scheduler (``tcp://host:8786``): the
            tasks run on its cluster through joblib's ``dask`` backend (the
            client is closed at the end); ``backend`` is then not used.
        on_result: called with ``(task index, result)`` as each task finishes
            (in the calling process, in the order they finish; with the
            ``multiprocessing`` backend, all at the end in task order).

    Returns:
        The list of results, in task order.

    Raises:
        CLIError: ``scheduler`` without Dask installed, or no scheduler there.
    """
    from joblib import Parallel, delayed, parallel_config

    unordered = "generator_unordered"  # results come as they finish
    calls = [delayed(_indexed)(i, fn, task, os.getpid()) for i, task in enumerate(tasks)]
    results: dict[int, Any] = {}

    def collect(runner: Any) -> list[Any]:
        for index, result in runner(calls):
            results[index] = result
            if on_result is not None:
                on_result(index, result)
        return [results[i] for i in range(len(calls))]

    if scheduler is None:
        # joblib's multiprocessing backend returns lists only: results come at the end.
        order = "list" if backend == "multiprocessing" else unordered
        # No more workers than tasks (--n-jobs 1000 started 1000 for one run), but
        # two at least: n_jobs=1 runs in this process, without a worker's isolation.
        jobs = min(n_jobs, max(len(calls), 2)) if n_jobs > 1 else n_jobs
        local = Parallel(n_jobs=jobs, backend=backend, verbose=verbose, return_as=order)
        with ending_workers_on_signals():
            return collect(local)
    with (
        ending_workers_on_signals(),
        dask_client(scheduler) as client,
        parallel_config(backend="dask", client=client, wait_for_workers_timeout=WORKER_TIMEOUT),
    ):
        return collect(Parallel(verbose=verbose, return_as=unordered))


def run_trials(
    fn: Callable[..., Any],
    tasks: Sequence[Mapping[str, Any]],
    *,
    n_jobs: int,
    backend: str,
    scheduler: str | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """:func:`run_parallel`, with an unknown local backend a :class:`CLIError`.

    (Checked first: a task's own ``ValueError`` is not the backend's.)
    """
    if scheduler is None and backend not in LOCAL_BACKENDS:
        raise CLIError(f"joblib backend {backend!r} failed: choose {', '.join(LOCAL_BACKENDS)}")
    return run_parallel(
        fn, tasks, n_jobs=n_jobs, backend=backend, scheduler=scheduler, on_result=on_result
    )
