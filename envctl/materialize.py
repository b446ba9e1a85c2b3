"""Create an environment from a lockfile, verifying the sha256 of every package file.

The steps, in an order that makes a failure harmless:

1. every package the lock installs on the platform is fetched into the shared
   package cache ``$ENVCTL_HOME/pkgs/<sha256>/<filename>`` — from the cache when it is
   there, else from the artifact store (which verifies), else from the lock's URL —
   and its sha256 checked *before anything is installed*. rattler does not verify
   ``file://`` channels, so this is the only check between a tampered channel and
   the prefix;
2. the conda packages are installed with rattler into a temp directory beside the
   target, with the target's path patched into the files
   (``alternative_target_prefix``), then the PyPI wheels with ``installer`` (no
   resolver, no network: the verified files only; scripts point at the target);
3. ``conda-meta/envctl.json`` records the alias and ids, and the temp directory is
   renamed into place. A failure at any step removes the temp directory, so there is
   never a half-built prefix, and a prefix with that record is always complete.

A second create of the same environment is fast: the verified archives are in the
package cache and rattler keeps the extracted packages in ``$ENVCTL_HOME/rattler``,
from which it hard-links.

Functions here return values and raise :class:`~envctl.errors.EnvctlError`; they
never print. rattler is imported inside functions only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from envctl.errors import EnvctlError, LockfileError, NotFoundError, StoreError
from envctl.fsutil import atomic_write, replace_dir
from envctl.models import Hex40, StrictModel, dump_json

if TYPE_CHECKING:
    from envctl.resolve.lockfile import LockData, LockedPackage
    from envctl.store.base import Store

HOME_ENV = "ENVCTL_HOME"
#: Inside a prefix: who made it and from what. Its presence means "complete".
RECORD_FILE = "conda-meta/envctl.json"
RECORD_VERSION = "1"
#: Parallel fetches: the work is I/O and hashing (hashlib releases the GIL).
FETCH_WORKERS = 8
URL_TIMEOUT = 60
_CHUNK = 1024 * 1024

Source = Literal["cache", "store", "url"]


class IntegrityError(EnvctlError):
    """A package file does not hash to the sha256 its lockfile records."""

    default_rule = "sha256-mismatch"


# -- where things live ----------------------------------------------------------------


def envctl_home() -> Path:
    """``$ENVCTL_HOME``, else ``$XDG_CACHE_HOME/envctl``, else ``~/.cache/envctl``."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return (base / "envctl").absolute()


def package_cache(home: Path | None = None) -> Path:
    """Verified package archives, content-addressed like the store: ``<sha256>/<filename>``."""
    return (home or envctl_home()) / "pkgs"


def rattler_cache(home: Path | None = None) -> Path:
    """rattler's own cache of extracted packages (it hard-links from there)."""
    return (home or envctl_home()) / "rattler"


# -- rattler ----------------------------------------------------------------------------

def host_platform() -> str:
    """The conda subdir of this machine (``linux-64``, ``osx-arm64``...)."""
    from rattler import Subdir

    return str(Subdir.current())


# -- the record inside a prefix -----------------------------------------------------------


class PrefixRecord(StrictModel):
    """``<prefix>/conda-meta/envctl.json``: what envctl installed there."""

    version: str = RECORD_VERSION
    alias: str | None = None
    asked: str | None = None
    pathspec: str | None = None
    req_id: Hex40
    full_id: Hex40
    platform: str
    lock_sha256: str | None = None
    conda_packages: int = 0
    pypi_packages: int = 0
    created_at: str | None = None
    envctl_version: str | None = None

    @property
    def env_id(self) -> str:
        return f"{self.req_id}:{self.full_id}"


def read_record(prefix: Path) -> PrefixRecord | None:
    """The envctl record of ``prefix``, or None when it holds none (not made by envctl)."""
    path = Path(prefix) / RECORD_FILE
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnvctlError(
            f"cannot read {path}: {exc}",
            file=str(path),
            rule="invalid-prefix-record",
            fix="remove the environment and create it again",
        ) from None
    from envctl.models import validate

    return validate(PrefixRecord, data, file=str(path), fix="create the environment again")


def _write_record(prefix: Path, record: PrefixRecord) -> None:
    atomic_write(prefix / RECORD_FILE, dump_json(record))


# -- events and results -------------------------------------------------------------------

Stage = Literal["fetch", "refetch", "store-unavailable", "install", "pypi", "done", "reused"]


@dataclass(frozen=True)
class MaterializeEvent:
    stage: Stage
    detail: str = ""


Reporter = Callable[[MaterializeEvent], None]


@dataclass(frozen=True)
class Fetched:
    package: LockedPackage
    path: Path
    source: Source


@dataclass(frozen=True)
class MaterializeResult:
    prefix: Path
    record: PrefixRecord
    reused: bool
    #: how many package files came from each place: {"cache": n, "store": n, "url": n}
    sources: dict[str, int] = field(default_factory=dict)

    @property
    def downloaded(self) -> int:
        """Files fetched from outside the package cache during this create."""
        return self.sources.get("store", 0) + self.sources.get("url", 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "alias": self.record.alias,
            "id": self.record.env_id,
            "req_id": self.record.req_id,
            "full_id": self.record.full_id,
            "platform": self.record.platform,
            "reused": self.reused,
            "conda_packages": self.record.conda_packages,
            "pypi_packages": self.record.pypi_packages,
            "sources": dict(self.sources),
        }


# -- fetching and verifying ---------------------------------------------------------------


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _mismatch(package: LockedPackage, where: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"{package.filename} from {where} does not match the lockfile: its sha256 is "
        f"{actual}, the lock records {package.sha256}; nothing was installed",
        fix="the file was changed after the tag was locked: restore the original (or re-run "
        "CI's upload); if the change is intended, lock it under a new tag",
    )


def _copy_url(url: str, tmp: Path) -> None:
    """Stream ``url`` (``file://``, ``http(s)://``) into ``tmp``."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "file":
        with open(unquote(parts.path), "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        return
    if parts.scheme not in ("http", "https"):
        raise StoreError(
            f"cannot download {url}: envctl fetches file://, http:// and https:// URLs",
            rule="unsupported-url",
            fix="configure an artifact store (store: in catalog.yaml) that holds the package",
        )
    request = urllib.request.Request(url, headers={"User-Agent": "envctl"})
    with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out, _CHUNK)


def _from_url(package: LockedPackage, dest: Path) -> None:
    """Download ``package.url`` to ``dest`` (atomically), refusing bytes of the wrong sha256."""
    from envctl.resolve.channels import redact

    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            _copy_url(package.url, tmp)
        except (OSError, urllib.error.URLError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise StoreError(
                f"cannot fetch {package.filename} from {redact(package.url)}: {reason}",
                rule="fetch-failed",
                fix="check the URL is reachable, or create from an artifact store that has it "
                "(--store / ENVCTL_STORE / store: in catalog.yaml)",
            ) from None
        actual = _sha256_of(tmp)
        if actual != package.sha256:
            raise _mismatch(package, redact(package.url), actual)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_package(
    package: LockedPackage,
    *,
    cache: Path,
    store: Store | None = None,
    reporter: Reporter | None = None,
) -> Fetched:
    """The verified archive of ``package`` in the package cache, fetched if needed.

    A cached file is re-hashed on every use: one that no longer matches (a disk
    error, someone editing it) is dropped and fetched again, like conda's cache.
    The store verifies what it hands out; a corrupt store object is an error, not a
    reason to fall back, because it means the store itself needs repair.
    """
    from envctl.store.base import CorruptObjectError, MissingObjectError, package_key

    sha256 = package.sha256
    assert sha256 is not None  # checked by materialize()
    dest = cache / sha256 / package.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        actual = _sha256_of(dest)
        if actual == sha256:
            return Fetched(package, dest, "cache")
        dest.unlink()
        _emit(reporter, "refetch", f"{package.filename}: cached copy is corrupt, fetching again")
    if store is not None:
        try:
            store.get_file(package_key(sha256, package.filename), dest)
            _emit(reporter, "fetch", f"{package.filename} from the store")
            return Fetched(package, dest, "store")
        except MissingObjectError:
            pass
        except CorruptObjectError as exc:
            raise IntegrityError(
                f"{package.filename} in the store is corrupt: {exc.message}; nothing was "
                "installed",
                file=exc.file,
                fix=exc.fix,
            ) from None
        except StoreError as exc:
            _emit(reporter, "store-unavailable", f"{package.filename}: {exc.message}")
    _from_url(package, dest)
    _emit(reporter, "fetch", f"{package.filename} from its URL")
    return Fetched(package, dest, "url")


def fetch_all(
    packages: Sequence[LockedPackage],
    *,
    cache: Path,
    store: Store | None = None,
    reporter: Reporter | None = None,
) -> list[Fetched]:
    """Fetch and verify every package in parallel; the first failure is raised and the
    fetches not started yet are dropped (those under way finish: each is atomic)."""
    if not packages:
        return []
    with ThreadPoolExecutor(max_workers=min(FETCH_WORKERS, len(packages))) as pool:
        futures = [
            pool.submit(fetch_package, p, cache=cache, store=store, reporter=reporter)
            for p in packages
        ]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


# -- the target prefix --------------------------------------------------------------------


@contextlib.contextmanager
def _prefix_lock(prefix: Path, home: Path) -> Iterator[None]:
    """Serialise creates of one prefix (two ``envctl run`` starting at once).

    The lock file lives under ``$ENVCTL_HOME/locks``, named by the prefix's path, so
    nothing is left beside a user's ``--prefix``.
    """
    prefix.parent.mkdir(parents=True, exist_ok=True)
    locks = home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock_path = locks / (hashlib.sha1(os.fsencode(prefix)).hexdigest() + ".lock")
    try:
        import fcntl
    except ImportError:  # Windows: no flock; creates of one prefix are not serialised
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_target(prefix: Path, wanted: PrefixRecord, *, force: bool) -> PrefixRecord | None:
    """The record of a complete env already at ``prefix``; refuse to clobber anything else."""
    if not prefix.exists() and not prefix.is_symlink():
        return None
    if not prefix.is_dir() or prefix.is_symlink():
        raise EnvctlError(
            f"{prefix} exists and is not a directory",
            file=str(prefix),
            rule="prefix-exists",
            fix="choose another --prefix",
        )
    record = read_record(prefix)
    if record is None:
        if not any(prefix.iterdir()):
            return None  # an empty directory is as good as none
        raise EnvctlError(
            f"{prefix} is not empty and is not an environment envctl created",
            file=str(prefix),
            rule="prefix-exists",
            fix="choose another --prefix (envctl never deletes what it did not create)",
        )
    same = (record.platform, record.full_id) == (wanted.platform, wanted.full_id)
    if not same and not force:
        raise EnvctlError(
            f"{prefix} already holds {record.alias or 'environment'} {record.env_id} "
            f"({record.platform}), not {wanted.env_id}",
            file=str(prefix),
            rule="prefix-exists",
            fix="pass --force to replace it, or choose another --prefix / --name",
        )
    return record


def _move_into_place(tmp: Path, prefix: Path) -> None:
    if prefix.exists() and not any(prefix.iterdir()):
        prefix.rmdir()
    # Replacing (--force): the old env moves aside first, so the name always holds a
    # complete environment, old or new.
    replace_dir(tmp, prefix)


# -- installing ---------------------------------------------------------------------------


def _conda_records(fetched: Sequence[Fetched], channels: Sequence[str]) -> list[Any]:
    """rattler ``RepoDataRecord``s read from the verified archives themselves.

    The lock lacks fields rattler needs to link correctly (``noarch``, for one), and
    the archive's own ``info/index.json`` is what was verified; its URL is the cached
    file, so rattler never fetches anything itself.
    """
    from rattler import RepoDataRecord

    from envctl.resolve.channels import ChannelRef, channel_of
    from envctl.resolve.conda import run_rattler

    refs = [ChannelRef(name=c, url=c, public_url=c) for c in channels]

    async def read_all() -> list[Any]:
        return list(
            await asyncio.gather(*(RepoDataRecord.from_package_archive(f.path) for f in fetched))
        )

    records = run_rattler(read_all())
    for item, record in zip(fetched, records, strict=True):
        package = item.package
        got = (record.name.normalized, str(record.version), str(record.build))
        want = (package.name, package.version, package.build or str(record.build))
        if got != want:
            raise LockfileError(
                f"{package.filename} holds {'-'.join(got)}, but the lock says {'-'.join(want)}",
                rule="lock-mismatch",
                fix="the lockfile is inconsistent; re-resolve the tag",
            )
        ref = channel_of(package.url, refs)
        if ref is not None:
            record.channel = ref.public_url  # provenance in conda-meta, as conda writes it
    return records


def _install_conda(
    records: list[Any], tmp: Path, prefix: Path, platform: str, *, link_scripts: bool,
    home: Path,
) -> None:
    from rattler import Subdir, install

    # run_rattler, not asyncio.run: it also keeps py-rattler 0.28 from crashing the
    # interpreter when the process exits right after an install (see envctl.resolve.conda).
    from envctl.resolve.conda import run_rattler

    try:
        run_rattler(
            install(
                records,
                tmp,
                cache_dir=rattler_cache(home),
                installed_packages=[],
                platform=Subdir(platform),
                execute_link_scripts=link_scripts,
                show_progress=False,
                alternative_target_prefix=prefix,
            )
        )
    except Exception as exc:  # rattler raises its own exception types; say what failed
        raise EnvctlError(
            f"installing the conda packages into {prefix} failed: {exc}",
            file=str(prefix),
            rule="install-failed",
            fix="nothing was left behind; check the disk space and permissions, then retry",
        ) from None


def _python_layout(tmp: Path, platform: str, python_version: str) -> tuple[str, str, str]:
    """(site-packages, scripts dir, interpreter) relative to the prefix, for ``platform``."""
    windows = platform.startswith("win-")
    site = "Lib/site-packages" if windows else f"lib/python{python_version}/site-packages"
    # A python build may move site-packages (free-threaded 3.13t): its record says where.
    for path in sorted((tmp / "conda-meta").glob("python-[0-9]*.json")):
        with contextlib.suppress(OSError, ValueError):
            site = json.loads(path.read_text()).get("python_site_packages_path") or site
    if windows:
        return site, "Scripts", "python.exe"
    return site, "bin", "bin/python"


def _install_pypi(
    wheels: Sequence[Fetched], tmp: Path, prefix: Path, platform: str, python_version: str
) -> None:
    """Install verified wheels with ``installer``: no resolver, no network, any platform.

    Scripts get the *final* prefix's interpreter in their shebang, and each wheel's
    RECORD is checked against its contents before anything of it is written.
    """
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    site, scripts, interpreter = _python_layout(tmp, platform, python_version)
    kind = {"win-64": "win-amd64", "win-arm64": "win-arm64", "win-32": "win-ia32"}.get(
        platform, "posix"
    )
    destination = SchemeDictionaryDestination(
        {
            "purelib": str(tmp / site),
            "platlib": str(tmp / site),
            "headers": str(tmp / "include"),
            "scripts": str(tmp / scripts),
            "data": str(tmp),
        },
        interpreter=str(prefix / interpreter),
        script_kind=kind,  # type: ignore[arg-type]
    )
    for item in wheels:
        if not item.package.filename.endswith(".whl"):
            raise LockfileError(
                f"{item.package.filename} is a source distribution; envctl installs PyPI "
                "packages from wheels only (building would run code and need build tools)",
                rule="sdist",
                fix="pin a version of it that has a wheel, or provide it from conda",
            )
        try:
            with WheelFile.open(item.path) as source:
                source.validate_record()
                install(source, destination, additional_metadata={"INSTALLER": b"envctl\n"})
        except (InstallerError, ValueError, OSError) as exc:
            raise EnvctlError(
                f"installing {item.package.filename} failed: {exc}",
                rule="install-failed",
                fix="nothing was left behind; the wheel may be broken upstream",
            ) from None


def _python_version(packages: Sequence[LockedPackage]) -> str | None:
    for package in packages:
        if package.name == "python":
            return ".".join(package.version.split(".")[:2])
    return None


def materialize(
    lock: LockData,
    platform: str,
    prefix: Path,
    *,
    record: PrefixRecord,
    store: Store | None = None,
    home: Path | None = None,
    force: bool = False,
    link_scripts: bool | None = None,
    reporter: Reporter | None = None,
) -> MaterializeResult:
    """Install what ``lock`` locks for ``platform`` at ``prefix``; see the module docstring.

    ``record`` names the ids the caller expects: the lock's packages must hash to its
    full_id, so a lock and an id can never be mixed up. An existing env with the same
    packages is reused (its record updated if the alias differs); another one is
    replaced only with ``force``. ``link_scripts`` defaults to "only when installing
    for this machine's platform" (post-link scripts run on the host).
    """
    prefix = Path(os.path.abspath(prefix))
    packages = lock.for_platform(platform)
    if not packages:
        raise NotFoundError(
            f"the lock of {record.alias or record.env_id} has no packages for {platform}",
            rule="unknown-platform",
            fix=f"use one of: {', '.join(lock.platforms) or '(none)'}",
        )
    missing = [p.filename for p in packages if not p.sha256]
    if missing:
        raise LockfileError(
            f"no sha256 for {', '.join(missing[:3])}: envctl installs only verified files",
            rule="missing-sha256",
            fix="re-resolve the tag with envctl (or adopt the lock, which fills sha256 in)",
        )
    actual_full_id = lock.full_id(platform)
    if actual_full_id != record.full_id:
        raise LockfileError(
            f"the lock's packages for {platform} give full_id {actual_full_id}, not "
            f"{record.full_id}",
            rule="lock-mismatch",
            fix="the lockfile does not belong to this id; fetch the catalog again",
        )
    conda = [p for p in packages if p.manager == "conda"]
    pypi = [p for p in packages if p.manager == "pip"]
    python_version = _python_version(conda)
    if pypi and python_version is None:
        raise LockfileError(
            f"the lock installs PyPI packages on {platform} but no conda python",
            rule="missing-python",
            fix="add python to the tag's dependencies and re-resolve",
        )
    if link_scripts is None:
        link_scripts = platform == host_platform()
    record = record.model_copy(
        update={"platform": platform, "conda_packages": len(conda), "pypi_packages": len(pypi)}
    )
    home = home or envctl_home()

    with _prefix_lock(prefix, home):
        existing = _check_target(prefix, record, force=force)
        if existing is not None and existing.full_id == record.full_id:
            if existing.model_dump(exclude={"created_at"}) != record.model_dump(
                exclude={"created_at"}
            ):
                _write_record(prefix, record.model_copy(update={"created_at": existing.created_at}))
            _emit(reporter, "reused", str(prefix))
            return MaterializeResult(prefix, read_record(prefix) or record, reused=True)

        # Everything is fetched and verified before the first file is installed.
        fetched = fetch_all(packages, cache=package_cache(home), store=store, reporter=reporter)
        sources: dict[str, int] = {}
        for item in fetched:
            sources[item.source] = sources.get(item.source, 0) + 1
        conda_files = [f for f in fetched if f.package.manager == "conda"]
        pypi_files = [f for f in fetched if f.package.manager == "pip"]

        tmp = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.envctl-", dir=prefix.parent))
        try:
            if conda_files:
                _emit(reporter, "install", f"{len(conda_files)} conda packages")
                records = _conda_records(conda_files, lock.channels)
                _install_conda(records, tmp, prefix, platform, link_scripts=link_scripts,
                               home=home)
            if pypi_files:
                _emit(reporter, "pypi", f"{len(pypi_files)} PyPI packages")
                assert python_version is not None
                _install_pypi(pypi_files, tmp, prefix, platform, python_version)
            _write_record(tmp, record)
            _move_into_place(tmp, prefix)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _emit(reporter, "done", str(prefix))
    return MaterializeResult(prefix, record, reused=False, sources=sources)


def _emit(reporter: Reporter | None, stage: Stage, detail: str = "") -> None:
    if reporter is not None:
        reporter(MaterializeEvent(stage, detail))
