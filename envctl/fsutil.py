"""Writing files so that a reader never sees half a file and a concurrent edit is not lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from envctl.errors import CatalogError

_ANY = object()


def atomic_write(
    path: Path,
    data: bytes,
    *,
    expected: bytes | object | None = _ANY,
    rel: str | None = None,
) -> None:
    """Write ``data`` to a temp file in the same folder, fsync it, and rename it over ``path``.

    ``expected`` (the bytes read before editing, or None for "did not exist") turns a file
    that changed meanwhile into a ``concurrent-edit`` error instead of a lost edit. An
    existing file keeps its permission bits.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    current = path.read_bytes() if expected is not _ANY and path.exists() else None
    if expected is not _ANY and current != expected:
        name = rel or str(path)
        raise CatalogError(
            f"{name} changed while envctl was editing it",
            file=name,
            rule="concurrent-edit",
            fix="run the command again",
        )
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_dir(new: Path, target: Path) -> None:
    """Rename the directory ``new`` to ``target``, replacing what is there.

    An existing ``target`` moves aside first, so the name always holds a complete
    directory, old or new: the old one is deleted once ``new`` is in place, and moved
    back if the rename fails.
    """
    if not target.exists():
        os.rename(new, target)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, trash / "old")
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(trash / "old", target)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
