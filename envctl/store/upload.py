"""Parallel, idempotent upload of package files into the store.

``upload_packages(store, items)`` puts every ``(path, sha256, filename)`` at
``pkgs/<sha256>/<filename>``:

- idempotent: an object already there (and verifying) is skipped, so a rerun after
  a failure sends only what is missing;
- checked first: each local file is hashed before anything of it is sent; a
  mismatch with the lockfile's sha256 stores nothing for it and stops the job (no
  new file is started; those in flight finish, being valid), with a StoreError;
- parallel: a thread pool (the work is I/O; hashlib releases the GIL);
- observable: ``progress`` is called once per finished file, always from the
  calling thread, so it may drive a rich progress bar without locking.

This module never prints; the CLI renders progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from envctl.store.base import Store, package_key

DEFAULT_WORKERS = 8


class PackageFile(NamedTuple):
    """A local package file and the sha256 the lockfile records for it."""

    path: Path
    sha256: str
    filename: str


@dataclass(frozen=True)
class UploadProgress:
    """One finished file: ``uploaded`` False means it was already in the store."""

    item: PackageFile
    key: str
    uploaded: bool
    size: int
    done: int
    total: int
    bytes_done: int
    bytes_total: int


@dataclass(frozen=True)
class UploadReport:
    uploaded: int
    skipped: int
    bytes: int  # bytes sent (skipped files count nothing)
    keys: tuple[str, ...]  # every key now in the store, in input order

    @property
    def total(self) -> int:
        return self.uploaded + self.skipped


ProgressCallback = Callable[[UploadProgress], None]


def upload_packages(
    store: Store,
    items: Iterable[PackageFile | tuple[Path, str, str]],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressCallback | None = None,
) -> UploadReport:
    """Upload ``items`` (``(path, sha256, filename)``) in parallel; see the module docstring."""
    unique: dict[str, PackageFile] = {}
    for raw in items:
        item = PackageFile(Path(raw[0]), raw[1], raw[2])
        # Validates sha256 and filename before any thread starts: a bad item fails the
        # job before a byte is sent.
        unique.setdefault(package_key(item.sha256, item.filename), item)
    if not unique:
        return UploadReport(uploaded=0, skipped=0, bytes=0, keys=())
    sizes = {key: _size(item) for key, item in unique.items()}
    bytes_total = sum(sizes.values())
    stop = threading.Event()

    def upload_one(item: PackageFile) -> bool | None:
        if stop.is_set():
            return None  # the job is stopping: start nothing new
        try:
            return store.put_package(item.path, item.sha256, item.filename)
        except BaseException:
            stop.set()  # at once, before this worker takes the next file
            raise

    uploaded = skipped = sent = done = bytes_done = 0
    with ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(unique))), thread_name_prefix="envctl-upload"
    ) as pool:
        futures: dict[Future[bool | None], str] = {
            pool.submit(upload_one, item): key for key, item in unique.items()
        }
        order = {future: index for index, future in enumerate(futures)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                # Successes first (so progress matches what is stored), then in input order.
                batch = sorted(finished, key=lambda f: (f.exception() is not None, order[f]))
                for future in batch:
                    error = future.exception()
                    if error is not None:
                        raise error
                    result = future.result()
                    if result is None:
                        continue
                    key = futures[future]
                    done += 1
                    bytes_done += sizes[key]
                    if result:
                        uploaded += 1
                        sent += sizes[key]
                    else:
                        skipped += 1
                    if progress is not None:
                        progress(
                            UploadProgress(
                                item=unique[key],
                                key=key,
                                uploaded=result,
                                size=sizes[key],
                                done=done,
                                total=len(unique),
                                bytes_done=bytes_done,
                                bytes_total=bytes_total,
                            )
                        )
        except BaseException:
            # A failed file, a failing progress callback or Ctrl-C: start nothing new;
            # leaving the pool waits only for the files already in flight.
            stop.set()
            for future in pending:
                future.cancel()
            raise
    return UploadReport(uploaded=uploaded, skipped=skipped, bytes=sent, keys=tuple(unique))


def _size(item: PackageFile) -> int:
    try:
        return item.path.stat().st_size
    except OSError:
        return 0  # put_package reports the unreadable file with a clear error
