"""The artifact store's contract: content-addressed, write-once keys, verified on every read.

Layout (DESIGN.md, "The artifact store")::

    pkgs/<sha256>/<filename>                    a package file, by its own sha256
    locks/<sha256>.conda-lock.yml               a lockfile, by its own sha256
    envs/<platform>/<req_id>/<full_id>.json     an environment record (records.EnvRecord)
    aliases/<name>/<tag>.json                   an alias record (records.AliasRecord)

Rules every backend keeps, implemented once here on top of a few primitives:

- Keys are relative ``/`` paths; anything that could escape the store (``..``, an
  absolute path, a backslash, a hidden segment) is refused before a backend sees it.
- Write-once: putting an existing key with the same bytes is a no-op; with other
  bytes it is a :class:`WriteOnceError`. Alias records of mutable tags are the only
  keys that may be replaced (``mutable=True``), atomically.
- A content-addressed key (``pkgs/``, ``locks/``) names the sha256 of its bytes:
  bytes that do not hash to it are never stored, and every read re-hashes. An
  existing object that fails verification is *repaired* by the next put of the
  right bytes: the key fixes what the content must be, so that is no overwrite.

Backends implement ``_stat``, ``_read_chunks``, ``_create``, ``_replace``, ``_list``
and ``describe``; ``_list_info`` and ``_delete`` serve garbage collection
(:mod:`envctl.lifecycle.gc`), the one place objects are ever removed. Nothing here
imports boto3 or pydantic; the typed record helpers import :mod:`envctl.store.records`
when called.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.errors import StoreError

if TYPE_CHECKING:
    from envctl.store.records import AliasRecord, EnvRecord

PKGS = "pkgs"
LOCKS = "locks"
ENVS = "envs"
ALIASES = "aliases"
LOCK_SUFFIX = ".conda-lock.yml"
RECORD_SUFFIX = ".json"

#: Read and copy in pieces this big: large packages never sit whole in memory.
CHUNK_SIZE = 1024 * 1024

#: S3's key limit; also far below any filesystem's path limit.
MAX_KEY_LEN = 1024
MAX_SEGMENT_LEN = 255

# Portable on every filesystem and S3 without escaping: conda and wheel file names
# (``numpy-1.26.4-py311h64a7726_0.conda``, ``foo-1.0+local-py3-none-any.whl``) fit.
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_+!=,@~-][A-Za-z0-9._+!=,@~-]*")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_PKG_KEY_RE = re.compile(r"pkgs/([0-9a-f]{64})/[^/]+")
_LOCK_KEY_RE = re.compile(r"locks/([0-9a-f]{64})" + re.escape(LOCK_SUFFIX))

_REUPLOAD = "re-upload with envctl ci run (it replaces objects that fail verification)"


class WriteOnceError(StoreError):
    """A key already holds different bytes; store objects are never rewritten."""

    default_rule = "write-once"


class CorruptObjectError(StoreError):
    """A content-addressed object's bytes do not hash to its key."""

    default_rule = "corrupt-object"


class MissingObjectError(StoreError):
    """The key is not in the store."""

    default_rule = "missing-object"


class InvalidKeyError(StoreError):
    default_rule = "invalid-key"


@dataclass(frozen=True)
class ObjectStat:
    """What a backend knows about a stored object without reading it.

    ``sha256`` is set when the backend recorded it at upload (S3's checksum or our
    metadata); ``None`` means "hash the bytes to know".
    """

    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object as a listing sees it, for garbage collection.

    ``modified`` is when the bytes were last written (POSIX seconds): a local file's
    mtime, S3's ``LastModified``. gc never collects an object younger than its grace
    period, so an upload in flight (objects put, record not yet committed) is safe.
    """

    key: str
    size: int
    modified: float


# -- keys -------------------------------------------------------------------------------


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None


def _check_segment(segment: str, whole: str) -> None:
    if not segment:
        raise InvalidKeyError(
            f"store key {whole!r} has an empty segment",
            fix="keys are relative paths like pkgs/<sha256>/<filename>",
        )
    if segment in (".", ".."):
        raise InvalidKeyError(
            f"store key {whole!r} contains {segment!r}: it could escape the store",
            fix="use a key inside the store, without '.' or '..' segments",
        )
    if len(segment) > MAX_SEGMENT_LEN or _SEGMENT_RE.fullmatch(segment) is None:
        raise InvalidKeyError(
            f"store key {whole!r} has an unsafe segment {segment!r}",
            fix="segments use letters, digits and ._+!=,@~- and do not start with '.'",
        )


def check_key(key: str) -> str:
    """``key`` if it is a safe store key, else :class:`InvalidKeyError`.

    The path-traversal check (as in weasel's remote storage): no absolute path, no
    backslash (a Windows separator on a local store), no ``.``/``..``/hidden or empty
    segment, so a key can only ever name a file under the store root.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"store key {key!r} is empty or not text")
    if "\\" in key:
        raise InvalidKeyError(
            f"store key {key!r} contains a backslash", fix="store keys use '/' separators"
        )
    if key.startswith("/") or re.match(r"[A-Za-z]:", key):
        raise InvalidKeyError(
            f"store key {key!r} is absolute", fix="use a key relative to the store root"
        )
    if len(key) > MAX_KEY_LEN:
        raise InvalidKeyError(f"store key is longer than {MAX_KEY_LEN} characters: {key[:80]}...")
    for segment in key.split("/"):
        _check_segment(segment, key)
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: a key, a key's leading folders (``pkgs/``), or a partial name."""
    if prefix == "":
        return prefix
    if "\\" in prefix or prefix.startswith("/"):
        raise InvalidKeyError(f"store prefix {prefix!r} is not a relative '/' path")
    *folders, last = prefix.split("/")
    for segment in folders:
        _check_segment(segment, prefix)
    if last:
        _check_segment(last, prefix)
    return prefix


def content_sha256(key: str) -> str | None:
    """The sha256 a content-addressed key names (``pkgs/``, ``locks/``), else ``None``."""
    match = _PKG_KEY_RE.fullmatch(key) or _LOCK_KEY_RE.fullmatch(key)
    return match.group(1) if match else None


def _check_sha256(sha256: str, what: str) -> str:
    if not is_sha256(sha256):
        raise InvalidKeyError(
            f"{what}: sha256 {sha256!r} is not 64 lower-case hex characters",
            fix="pass the hex sha256 digest recorded in the lockfile",
        )
    return sha256


def package_key(sha256: str, filename: str) -> str:
    """``pkgs/<sha256>/<filename>``."""
    _check_sha256(sha256, filename)
    if "/" in filename:
        raise InvalidKeyError(f"package file name {filename!r} contains '/'")
    return check_key(f"{PKGS}/{sha256}/{filename}")


def lock_key(sha256: str) -> str:
    """``locks/<sha256>.conda-lock.yml``."""
    return f"{LOCKS}/{_check_sha256(sha256, 'lockfile')}{LOCK_SUFFIX}"


def env_record_key(platform: str, req_id: str, full_id: str) -> str:
    """``envs/<platform>/<req_id>/<full_id>.json``."""
    from envctl.names import is_40hex

    for half, value in (("req_id", req_id), ("full_id", full_id)):
        if not is_40hex(value):
            raise InvalidKeyError(f"{half} {value!r} is not 40 lower-case hex characters")
    return check_key(f"{ENVS}/{platform}/{req_id}/{full_id}{RECORD_SUFFIX}")


def alias_key(name: str, tag: str) -> str:
    """``aliases/<name>/<tag>.json``; ``name`` and ``tag`` must be valid envctl names.

    ``a/b:c`` is ``aliases/a/b/c.json`` and ``a/b/c:x`` is ``aliases/a/b/c/x.json``:
    a file and a folder of different names, so they never clash.
    """
    from envctl.names import parse_env_name, parse_tag

    env = parse_env_name(name)
    return check_key(f"{ALIASES}/{env.path}/{parse_tag(tag)}{RECORD_SUFFIX}")


# -- hashing ----------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a local file; an unreadable file is a StoreError naming it."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise StoreError(
            f"cannot read {path}: {exc.strerror or exc}",
            file=str(path),
            rule="local-file",
            fix="fetch the file again, then rerun",
        ) from None


Source = bytes | Path


def _source_size(src: Source) -> int:
    return len(src) if isinstance(src, bytes) else src.stat().st_size


def _iter_source(src: Source) -> Iterator[bytes]:
    if isinstance(src, bytes):
        yield src
        return
    with open(src, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


# -- the store --------------------------------------------------------------------------


class Store(ABC):
    """A content-addressed, write-once artifact store (see the module docstring)."""

    #: ``file:///abs/path`` or ``s3://bucket/prefix``: where the store is, for messages.
    url: str

    # -- backend primitives ---------------------------------------------------------

    @abstractmethod
    def _stat(self, key: str) -> ObjectStat | None:
        """The object's size (and sha256 when known without reading), or None if absent."""

    @abstractmethod
    def _read_chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes in pieces; :class:`MissingObjectError` if absent."""

    @abstractmethod
    def _create(self, key: str, src: Source, sha256: str, size: int) -> bool:
        """Store ``src`` at ``key`` only if the key is absent, atomically.

        Returns False (writing nothing) when the key already exists. Readers never
        see a partial object.
        """

    @abstractmethod
    def _replace(self, key: str, src: Source, sha256: str, size: int) -> None:
        """Store ``src`` at ``key`` whether or not it exists, atomically."""

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix``, sorted."""

    @abstractmethod
    def describe(self, key: str) -> str:
        """Where ``key`` is, as a path or URL a person can look up."""

    def _list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        """Like ``_list``, with each object's size and last write time."""
        raise NotImplementedError(f"{type(self).__name__} cannot list object times")

    def _delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete objects")

    # -- generic operations ---------------------------------------------------------

    def exists(self, key: str) -> bool:
        return self._stat(check_key(key)) is not None

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (``"pkgs/"``, ``"envs/linux-64/"``), sorted."""
        return self._list(check_prefix(prefix))

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """:class:`ObjectInfo` of the keys starting with ``prefix``, sorted by key."""
        return self._list_info(check_prefix(prefix))

    def delete(self, key: str) -> None:
        """Remove ``key`` from the store; deleting a missing key does nothing.

        Only garbage collection calls this (write-once holds for every other writer):
        it deletes records before the packages and locks they name, so a crash
        between two deletes never leaves a record pointing at a missing object.
        """
        self._delete(check_key(key))

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes, verified against its sha256 when the key is content-addressed."""
        key = check_key(key)
        digest = hashlib.sha256()
        parts: list[bytes] = []
        for chunk in self._read_chunks(key):
            digest.update(chunk)
            parts.append(chunk)
        self._verify_digest(key, digest.hexdigest())
        return b"".join(parts)

    def get_file(self, key: str, dest: Path) -> Path:
        """Stream the object to ``dest``, verifying its sha256 when content-addressed.

        ``dest`` appears only complete and verified: the bytes go to a temp file
        beside it first, which is removed on any failure.
        """
        key = check_key(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for chunk in self._read_chunks(key):
                    digest.update(chunk)
                    out.write(chunk)
            self._verify_digest(key, digest.hexdigest())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def put_bytes(self, key: str, data: bytes, *, mutable: bool = False) -> bool:
        """Store ``data`` at ``key``; True if bytes were written, False if already there.

        ``mutable=True`` (alias records of mutable tags only) replaces different bytes.
        """
        return self._put(check_key(key), bytes(data), mutable=mutable)

    def put_file(self, key: str, path: Path, *, mutable: bool = False) -> bool:
        """Store the file at ``path`` under ``key``; see :meth:`put_bytes`."""
        return self._put(check_key(key), Path(path), mutable=mutable)

    def _put(self, key: str, src: Source, *, mutable: bool) -> bool:
        if mutable and not key.startswith(ALIASES + "/"):
            # A programming error, not a user's: only alias records ever move.
            raise ValueError(f"only alias records may be replaced, not {key}")
        expected = content_sha256(key)
        sha256 = sha256_bytes(src) if isinstance(src, bytes) else sha256_file(src)
        if expected is not None and sha256 != expected:
            raise StoreError(
                f"refusing to store {src if isinstance(src, Path) else 'bytes'} as {key}: "
                f"its sha256 is {sha256}",
                file=self.describe(key),
                rule="sha256-mismatch",
                fix="the file does not match the lockfile; fetch it again from the channel",
            )
        size = _source_size(src)
        stat = self._stat(key)
        if stat is None:
            if mutable:
                self._replace(key, src, sha256, size)
                return True
            if self._create(key, src, sha256, size):
                return True
            stat = self._stat(key)  # another writer created it between our two calls
            if stat is None:
                raise StoreError(
                    f"{key} was reported present, then absent",
                    file=self.describe(key),
                    fix="the store is being changed behind envctl's back; rerun",
                )
        if stat.size == size and self._object_sha256(key, stat) == sha256:
            return False  # write-once: same bytes, nothing to do
        if expected is not None or mutable:
            # A corrupt content-addressed object, or a moved alias: replace atomically.
            self._replace(key, src, sha256, size)
            return True
        raise WriteOnceError(
            f"{key} already holds different content; store objects are write-once",
            file=self.describe(key),
            fix="publish under a new key (a new tag gets new ids); never rewrite an object",
        )

    def _object_sha256(self, key: str, stat: ObjectStat) -> str:
        if stat.sha256 is not None:
            return stat.sha256
        digest = hashlib.sha256()
        for chunk in self._read_chunks(key):
            digest.update(chunk)
        return digest.hexdigest()

    def _verify_digest(self, key: str, actual: str) -> None:
        expected = content_sha256(key)
        if expected is not None and actual != expected:
            raise CorruptObjectError(
                f"corrupt object {key}: its sha256 is {actual}",
                file=self.describe(key),
                fix=_REUPLOAD,
            )

    def verify(self, key: str) -> bool:
        """Whether a content-addressed object's bytes hash to its key (reads it whole)."""
        key = check_key(key)
        expected = content_sha256(key)
        if expected is None:
            raise ValueError(f"{key} is not content-addressed")
        stat = self._stat(key)
        if stat is None:
            return False
        digest = hashlib.sha256()
        for chunk in self._read_chunks(key):
            digest.update(chunk)
        return digest.hexdigest() == expected

    # -- packages and locks ---------------------------------------------------------

    @staticmethod
    def package_key(sha256: str, filename: str) -> str:
        return package_key(sha256, filename)

    def has_package(self, sha256: str, filename: str) -> bool:
        """Whether the package is there, checked cheaply (size and recorded sha256 only).

        Use :meth:`verify` for a full re-hash; every read re-hashes anyway.
        """
        stat = self._stat(package_key(sha256, filename))
        return stat is not None and stat.sha256 in (None, sha256)

    def put_package(self, path: Path, sha256: str, filename: str | None = None) -> bool:
        """Upload a package file as ``pkgs/<sha256>/<filename>``; True if bytes were sent.

        The local file is hashed first: if it does not match ``sha256`` nothing is
        stored and a StoreError says so. An object already there is verified and
        skipped (or repaired if it fails verification).
        """
        path = Path(path)
        return self.put_file(package_key(sha256, filename or path.name), path)

    def put_lock(self, data: bytes) -> str:
        """Store a lockfile under its own sha256; returns that sha256."""
        sha256 = sha256_bytes(data)
        self.put_bytes(lock_key(sha256), data)
        return sha256

    def get_lock(self, sha256: str) -> bytes:
        return self.get_bytes(lock_key(sha256))

    # -- records --------------------------------------------------------------------

    def put_env_record(self, record: EnvRecord, *, check_artifacts: bool = True) -> EnvRecord:
        """Publish an environment record; returns the record now in the store.

        ``check_artifacts``: the lock and every package must already be in the store
        (uploads go first), so a record never points at a missing artifact.

        Write-once by environment: a record already stored for the same id with the
        same packages stands (it may name another alias or time: the first one that
        produced this environment); other packages under the same id are refused.
        """
        from envctl.store import records

        key = env_record_key(record.platform, record.req_id, record.full_id)
        if check_artifacts:
            self._check_artifacts(record)
        try:
            self.put_bytes(key, records.dump_record(record))
        except WriteOnceError:
            existing = self.get_env_record(record.platform, record.req_id, record.full_id)
            if existing.same_environment(record):
                return existing
            raise WriteOnceError(
                f"environment {record.req_id}:{record.full_id} ({record.platform}) is already "
                "published with other packages",
                file=self.describe(key),
                fix="ids must name one set of packages; report this as a bug in envctl",
            ) from None
        return record

    def _check_artifacts(self, record: EnvRecord) -> None:
        missing = [lock_key(record.lock_sha256)] if not self.has_lock(record.lock_sha256) else []
        for package in record.packages:
            stat = self._stat(package_key(package.sha256, package.filename))
            if stat is None or stat.size != package.size:
                missing.append(package_key(package.sha256, package.filename))
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise StoreError(
                f"environment {record.req_id}:{record.full_id} ({record.platform}) names "
                f"{missing[0]}{more}, not in the store",
                file=self.describe(missing[0]),
                tag=record.alias,
                rule="missing-artifact",
                fix="upload the lock and packages first (envctl ci run does), then the record",
            )

    def has_lock(self, sha256: str) -> bool:
        return self._stat(lock_key(sha256)) is not None

    def get_env_record(self, platform: str, req_id: str, full_id: str) -> EnvRecord:
        from envctl.store import records

        key = env_record_key(platform, req_id, full_id)
        record = records.load_env_record(self.get_bytes(key), where=self.describe(key))
        if (record.platform, record.req_id, record.full_id) != (platform, req_id, full_id):
            raise CorruptObjectError(
                f"corrupt object {key}: it describes {record.platform} "
                f"{record.req_id}:{record.full_id}",
                file=self.describe(key),
                fix=_REUPLOAD,
            )
        return record

    def put_alias(self, record: AliasRecord, *, check_artifacts: bool = True) -> AliasRecord:
        """Publish an alias record; returns the record now in the store.

        An immutable tag's record is write-once (republishing the same target is a
        no-op that keeps the first record). A mutable tag's record is replaced
        atomically when its target changes; readers see the old or the new one. A
        record stored as immutable is never replaced, whatever the new one says.
        """
        from envctl.store import records

        key = alias_key(record.name, record.tag)
        if check_artifacts:
            for platform, ids in sorted(record.platforms.items()):
                env_key = env_record_key(platform, ids.req_id, ids.full_id)
                if self._stat(env_key) is None:
                    raise StoreError(
                        f"{record.alias} names environment {ids.req_id}:{ids.full_id} "
                        f"({platform}), which is not in the store",
                        file=self.describe(env_key),
                        tag=record.tag,
                        rule="missing-artifact",
                        fix="publish the environment records first, then the alias",
                    )
        existing = self.find_alias(record.name, record.tag)
        if existing is not None and existing.same_target(record):
            return existing
        if existing is not None and not existing.mutable:
            raise WriteOnceError(
                f"{record.alias} is immutable and already published for "
                f"lock {existing.lock_sha256}",
                file=self.describe(key),
                tag=record.tag,
                fix="an immutable tag never changes: add a new tag instead",
            )
        data = records.dump_record(record)
        if existing is None and not record.mutable:
            try:
                self.put_bytes(key, data)
            except WriteOnceError:
                return self.put_alias(record, check_artifacts=False)  # lost a race; recheck
            return record
        self.put_bytes(key, data, mutable=True)
        return record

    def get_alias(self, name: str, tag: str) -> AliasRecord:
        record = self.find_alias(name, tag)
        if record is None:
            key = alias_key(name, tag)
            raise MissingObjectError(
                f"{name}:{tag} is not published in the store",
                file=self.describe(key),
                tag=tag,
                fix="check the name; a new tag is published by CI once it is locked",
            )
        return record

    def find_alias(self, name: str, tag: str) -> AliasRecord | None:
        """The alias record, or None if it was never published."""
        from envctl.store import records

        key = alias_key(name, tag)
        try:
            data = self.get_bytes(key)
        except MissingObjectError:
            return None
        record = records.load_alias_record(data, where=self.describe(key))
        if (record.name, record.tag) != (name, tag):
            raise CorruptObjectError(
                f"corrupt object {key}: it describes {record.alias}",
                file=self.describe(key),
                fix=_REUPLOAD,
            )
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
