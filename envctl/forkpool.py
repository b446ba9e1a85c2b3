"""Read many catalog files in worker processes: what makes whole-catalog commands fast.

Parsing YAML is most of the work of ``lint``, ``list``, ``search`` and the site on a large
catalog, and each file needs nothing but its own bytes. Workers are forked (nothing is
imported again) before the caller has read much, each with its own reader of the catalog's
source (a work tree, or its own ``git cat-file`` for a revision). They send back plain
dicts, lists and strings, which cross the pipe several times faster than validated models;
the caller validates them again, in less time than unpickling models would take.

Without workers (a small catalog, one CPU, no ``fork``, a source that cannot fork, a
system where no pool can start) every file is read in the calling process, the same way.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from envctl import yamlio
from envctl.catalog import Source
from envctl.collector import FEW_COLLECTIONS
from envctl.errors import EnvctlError

#: Below this many files to parse the workers' start-up costs more than they save.
PARALLEL_FILES = 300
#: Environment files per task: large enough that the pipe is not the bottleneck.
CHUNK = 200

Parsed = tuple[bytes, Any]  # a file's bytes and their YAML, without line maps

_source: Source | None = None
_SHARED: dict[str, str] = {}


def worker_count() -> int:
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # spawn would re-import envctl in each worker: not worth it
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def start_pool(source: Source, files: int) -> Executor | None:
    """Forked workers reading through their own copy of ``source``, or None when ``files``
    is too few to pay for them, or none can start. The caller stops them (:func:`stop`).

    A process pool of ``concurrent.futures``, not ``multiprocessing.Pool``: when a worker
    dies (killed, out of memory) the pending results fail with ``BrokenProcessPool``,
    where ``Pool`` waits for them forever; callers then read the rest themselves.
    """
    import multiprocessing

    workers = min(worker_count(), -(-files // CHUNK))
    if (files < PARALLEL_FILES or workers < 2 or not hasattr(source, "fork")
            or multiprocessing.current_process().daemon):  # daemons may not have children
        return None
    from concurrent.futures import ProcessPoolExecutor

    try:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_init, initargs=(source,))
    except OSError:  # no semaphores (no /dev/shm): read here
        return None


def stop(pool: Executor | None) -> None:
    """Stop the workers without waiting for what is queued (a caller that stops early)."""
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def results(pool: Executor, task: Callable[[Any], list[Any]],
            jobs: Sequence[Any]) -> Iterator[list[Any]] | None:
    """``task`` of each job by the workers, in order; queued now, so that the workers start
    while the caller does other work. None when the pool cannot take them (its processes
    failed to start)."""
    try:
        return pool.map(task, jobs)
    except (OSError, BrokenProcessPool):
        return None


def _init(source: Source) -> None:
    global _source
    # Ctrl-C is for the calling process, which terminates the pool: a worker interrupted
    # while sending a result could leave the pool waiting for it forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*FEW_COLLECTIONS)  # what it parses is kept until sent
    _source = source.fork()  # type: ignore[attr-defined]


def worker_source() -> Source:
    """The source of this worker process (for task functions run in the pool)."""
    assert _source is not None, "not in a forkpool worker"
    return _source


def read_plain(source: Source, path: str, data: bytes | None = None) -> Parsed | None:
    """A file's bytes (``data``, read now when not given) and YAML without line maps; None
    when it is missing or not valid YAML (the caller reads it again with line maps to say
    why)."""
    if data is None:
        data = source.read(path)
    if data is None:
        return None
    try:
        return data, yamlio.load(data, file=path, lines=False)
    except EnvctlError:
        return None


class Prefetched:
    """``source`` with these paths read already, in few round trips where the source can
    (a git revision's ``cat-file``: one request per file waited on the pipe more than the
    parsing took)."""

    def __init__(self, source: Source, paths: Sequence[str]) -> None:
        self.source = source
        self.label = source.label
        read_many = getattr(source, "read_many", None)
        self._data = dict(zip(paths, read_many(paths), strict=True)) if read_many else {}

    def read(self, path: str) -> bytes | None:
        if path in self._data:
            return self._data.pop(path)  # read once: the cache is not kept
        return self.source.read(path)

    def entries(self, prefix: str) -> list[Any]:
        return self.source.entries(prefix)


def read_chunk(paths: Sequence[str | None]) -> list[Parsed | None]:
    """A pool task: :func:`read_plain` of each path (None: skip it), strings shared."""
    source = Prefetched(worker_source(), [p for p in paths if p is not None])
    out: list[Parsed | None] = []
    for path in paths:
        parsed = read_plain(source, path) if path is not None else None
        out.append(parsed and (parsed[0], _share_strings(parsed[1])))
    return out


def _share_strings(node: Any) -> Any:
    """One object per distinct string: requirements repeat across a catalog, and pickle
    sends a shared object once per chunk, so the environments the caller keeps (the models
    hold these very strings) take tens of MB less at 10,000 environments."""
    if isinstance(node, str):
        return _SHARED.setdefault(node, node)
    if isinstance(node, dict):
        return {_SHARED.setdefault(k, k): _share_strings(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_share_strings(v) for v in node]
    return node


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def read_in(pool: Executor | None, source: Source,
            paths: Sequence[str | None]) -> Iterator[Parsed | None]:
    """:func:`read_plain` of each path, in order: by ``pool``'s workers, or here without
    one. A None path yields None.

    The tasks are queued now, not when the iterator is first used: the workers start
    while the caller does other work (lint lists locks/ meanwhile, then queues the metas
    behind them)."""
    done = results(pool, read_chunk, chunks(paths, CHUNK)) if pool is not None else None
    return _read_rest(done, source, paths)


def _read_rest(done: Iterator[list[Parsed | None]] | None, source: Source,
               paths: Sequence[str | None]) -> Iterator[Parsed | None]:
    """What the workers read, then, if they broke off (or never ran), the rest read here."""
    count = 0
    if done is not None:
        try:
            for chunk in done:
                yield from chunk
                count += len(chunk)
        except BrokenProcessPool:
            pass  # a worker died: read what is left here
    for path in paths[count:]:
        yield read_plain(source, path) if path is not None else None


@contextmanager
def reading(source: Source, paths: Sequence[str]) -> Iterator[Iterator[Parsed | None]]:
    """:func:`read_plain` of every path, in order, by workers on a large catalog; the
    workers are stopped when the block ends, also early."""
    pool = start_pool(source, len(paths))
    try:
        yield read_in(pool, source, paths)
    finally:
        stop(pool)
