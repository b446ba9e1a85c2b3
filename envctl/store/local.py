"""The local-directory store: the default, embedded backend (a path or ``file://`` URL).

Writes follow pre-commit's ``store.py``: the bytes go to a temp file in the same
folder (hashed as they are copied, so what lands is what was checked), then, under
a file lock, the key is re-checked and the temp file renamed into place with
``os.replace``. Readers therefore never see a partial object, two writers never
both "create" a key, and an alias record is replaced in one atomic rename.

Temp files and the lock file start with ``.``, which no key segment may, so a
listing never shows them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envctl.errors import StoreError
from envctl.store.base import (
    CHUNK_SIZE,
    MissingObjectError,
    ObjectInfo,
    ObjectStat,
    Source,
    Store,
    _iter_source,
)

LOCK_FILE = ".envctl-store.lock"

# flock is per open file, so threads of one process exclude each other too; the
# thread lock covers filesystems where flock falls back to per-process fcntl locks
# (NFS), and platforms without fcntl.
_THREAD_LOCK = threading.Lock()


class LocalStore(Store):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def _path(self, key: str) -> Path:
        # Keys are already checked (no '..', no absolute path); this also refuses a
        # symlink planted inside the store that leads out of it.
        path = self.root / key
        real_root = os.path.realpath(self.root)
        if not os.path.realpath(path).startswith(real_root + os.sep):
            raise StoreError(
                f"{key} resolves outside the store",
                file=str(path),
                rule="invalid-key",
                fix=f"remove the symlink under {self.root}",
            )
        return path

    # -- reads ------------------------------------------------------------------------

    def _stat(self, key: str) -> ObjectStat | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._os_error("read", key, exc) from None
        return ObjectStat(size=st.st_size) if stat.S_ISREG(st.st_mode) else None

    def _read_chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    yield chunk
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise MissingObjectError(
                f"{key} is not in the store",
                file=str(path),
                fix="upload it first (envctl ci run), or check the store URL in catalog.yaml",
            ) from None
        except OSError as exc:
            raise self._os_error("read", key, exc) from None

    def _list(self, prefix: str) -> Iterator[str]:
        # Walk only the folder the prefix names, not the whole store.
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def _list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        for key in self._list(prefix):
            try:
                st = (self.root / key).stat()
            except FileNotFoundError:
                continue  # deleted since it was listed
            except OSError as exc:
                raise self._os_error("read", key, exc) from None
            yield ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime)

    # -- deletes ----------------------------------------------------------------------

    def _delete(self, key: str) -> None:
        path = self._path(key)
        top = self.root / key.split("/", 1)[0]
        try:
            with self._locked():
                path.unlink(missing_ok=True)
                # Empty folders left behind (pkgs/<sha256>/) go too, up to the top folder.
                # A writer's temp file keeps its folder non-empty, so the only loser is a
                # writer between its mkdir and its mkstemp of this very key: it fails
                # with a clear StoreError and a rerun succeeds.
                parent = path.parent
                while parent != top and parent.is_relative_to(top):
                    try:
                        parent.rmdir()
                    except OSError:
                        break  # not empty (or already gone): stop climbing
                    parent = parent.parent
        except OSError as exc:
            raise self._os_error("delete", key, exc) from None

    # -- writes -----------------------------------------------------------------------

    def _create(self, key: str, src: Source, sha256: str, size: int) -> bool:
        path = self._path(key)
        tmp = self._write_temp(key, path, src, sha256)
        try:
            with self._locked():
                if path.exists():  # re-check under the lock: another writer may have won
                    return False
                os.replace(tmp, path)
                return True
        except OSError as exc:
            raise self._os_error("write", key, exc) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _replace(self, key: str, src: Source, sha256: str, size: int) -> None:
        path = self._path(key)
        tmp = self._write_temp(key, path, src, sha256)
        try:
            with self._locked():
                os.replace(tmp, path)
        except OSError as exc:
            raise self._os_error("write", key, exc) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _write_temp(self, key: str, path: Path, src: Source, sha256: str) -> Path:
        """Copy ``src`` beside ``path``, fsync'd; refuse it if it no longer hashes to ``sha256``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise self._os_error("write", key, exc) from None
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for chunk in _iter_source(src):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shared store must be readable
            if digest.hexdigest() != sha256:
                # The source changed after it was checked: never store what was not checked.
                raise StoreError(
                    f"{src} changed while it was being stored as {key}",
                    file=str(path),
                    rule="sha256-mismatch",
                    fix="make sure nothing else writes the file, then rerun",
                )
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._os_error("write", key, exc) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with _THREAD_LOCK, open(self.root / LOCK_FILE, "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # Windows: the thread lock is all we have
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _os_error(self, action: str, key: str, exc: OSError) -> StoreError:
        return StoreError(
            f"cannot {action} {key}: {exc.strerror or exc}",
            file=self.describe(key),
            rule="store-io",
            fix=f"check that {self.root} exists and is writable, and the disk has space",
        )
