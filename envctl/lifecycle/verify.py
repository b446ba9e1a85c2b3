"""``envctl verify``: is everything the protected branch locks in the store, intact?

For every locked tag (frozen or rolling; pending and retired tags are skipped) of the
catalog at the protected revision, or for the tags named:

- the lockfile: ``locks/<sha256>`` present and hashing to its key (and the committed
  lock hashing to the ``lock_sha256`` its meta records);
- every environment record the meta names: present, readable, and listing exactly the
  packages the lock installs on that platform;
- every package the lock names: present and hashing to its key;
- the tag's alias record, when published: pointing at the tag's current ids (a stale
  one is a warning: CI publishes aliases after the commit back).

Objects are checked once each however many tags share them, in parallel; content is
re-hashed in full. :func:`check_records` adds a store-wide pass: no alias or
environment record names a missing object (what gc's ordering guarantees).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from envctl.catalog import Catalog
from envctl.errors import EnvctlError, NotFoundError
from envctl.names import Alias, parse_alias
from envctl.spec import PointerTag
from envctl.store.base import (
    MissingObjectError,
    Store,
    alias_key,
    env_record_key,
    lock_key,
    package_key,
    sha256_bytes,
)

Severity = Literal["error", "warning"]
WORKERS = 8


@dataclass(frozen=True)
class Problem:
    """One thing wrong: which object, what, and which tags it breaks."""

    key: str | None
    problem: str  # missing | corrupt | mismatch | invalid | stale | dangling
    message: str
    tags: tuple[str, ...] = ()
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "problem": self.problem, "severity": self.severity,
                "message": self.message, "tags": list(self.tags)}


@dataclass
class VerifyReport:
    store: str
    rev: str | None
    tags: list[str] = field(default_factory=list)  # checked
    skipped: dict[str, str] = field(default_factory=dict)  # tag -> why
    objects: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": self.store,
            "rev": self.rev,
            "tags": self.tags,
            "skipped": self.skipped,
            "objects": self.objects,
            "bytes": self.bytes,
            "problems": [p.to_dict() for p in self.problems],
        }


Progress = Callable[[int, int, str], None]


@dataclass
class _Check:
    """One store object to check, and everything that depends on it."""

    key: str
    kind: Literal["lock", "package", "env", "alias"]
    tags: set[str] = field(default_factory=set)
    # env: the (filename, sha256) set the lock installs; alias: {platform: (req, full)}
    expected: Any = None


def _targets(catalog: Catalog, names: Sequence[str], report: VerifyReport) -> list[Alias]:
    """The concrete tags to check: every locked one, or those ``names`` mean."""
    chosen: list[Alias] = []
    if names:
        for text in names:
            chosen.append(catalog.resolve(parse_alias(text)))
    else:
        for name in catalog.env_names():
            chosen.extend(a for a in catalog.aliases(name)
                          if not isinstance(catalog.tag(a), PointerTag))
    out: list[Alias] = []
    for alias in dict.fromkeys(chosen):
        info = catalog.info(alias)
        if info.state == "retired":
            report.skipped[str(alias)] = f"retired: {info.spec.retired}"  # type: ignore[union-attr]
        elif info.state == "pending" or info.meta is None:
            report.skipped[str(alias)] = "pending: not locked yet"
        elif catalog.lock_bytes(alias) is None:
            report.skipped[str(alias)] = "no lockfile committed"
        else:
            out.append(alias)
    return out


def _plan(catalog: Catalog, aliases: list[Alias], report: VerifyReport) -> dict[str, _Check]:
    from envctl.resolve.lockfile import read_lock

    checks: dict[str, _Check] = {}

    def need(key: str, kind: Any, tag: str, expected: Any = None) -> None:
        check = checks.setdefault(key, _Check(key, kind, expected=expected))
        check.tags.add(tag)

    for alias in aliases:
        tag = str(alias)
        meta = catalog.meta(alias)
        data = catalog.lock_bytes(alias)
        assert meta is not None and data is not None  # _targets checked
        report.tags.append(tag)
        if sha256_bytes(data) != meta.lock_sha256:
            report.problems.append(Problem(
                str(alias.lock_path), "mismatch",
                f"{alias.lock_path} hashes to {sha256_bytes(data)}, its meta records "
                f"{meta.lock_sha256}", (tag,)))
        need(lock_key(meta.lock_sha256), "lock", tag)
        try:
            lock = read_lock(data, file=str(alias.lock_path))
        except EnvctlError as exc:
            report.problems.append(Problem(str(alias.lock_path), "invalid", exc.message, (tag,)))
            continue
        for platform, ids in sorted(meta.platforms.items()):
            files = frozenset((p.filename, p.sha256) for p in lock.for_platform(platform))
            need(env_record_key(platform, ids.req_id, ids.full_id), "env", tag, files)
        for package in lock.packages:
            if not package.sha256:
                report.problems.append(Problem(
                    None, "invalid", f"{package.filename} has no sha256 in the lock", (tag,)))
                continue
            need(package_key(package.sha256, package.filename), "package", tag)
        targets = {p: (m.req_id, m.full_id) for p, m in meta.platforms.items()}
        need(alias_key(str(alias.name), alias.tag), "alias", tag, targets)
        # Pointers at this tag publish their own alias records with the same target.
        for pointer in catalog.pointers_to(alias):
            need(alias_key(str(alias.name), pointer), "alias", f"{alias.name}:{pointer}", targets)
    return checks


def _run(store: Store, check: _Check) -> tuple[list[Problem], int]:
    """Check one object; returns its problems and the bytes read."""
    tags = tuple(sorted(check.tags))
    key = check.key
    where = store.describe(key)
    if check.kind in ("lock", "package"):
        # A listing of the key itself: presence and size in one request.
        size = next((i.size for i in store.list_info(key) if i.key == key), None)
        if size is None:
            return [Problem(key, "missing", f"{where} is missing", tags)], 0
        if not store.verify(key):  # re-hashes every byte
            return [Problem(key, "corrupt", f"{where} does not hash to its key", tags)], size
        return [], size
    if check.kind == "env":
        from envctl.store import records

        try:
            record = records.load_env_record(store.get_bytes(key), where=where)
        except MissingObjectError:
            return [Problem(key, "missing", f"{where} is missing", tags)], 0
        except EnvctlError as exc:
            return [Problem(key, "invalid", exc.message, tags)], 0
        files = frozenset((p.filename, p.sha256) for p in record.packages)
        if files != check.expected:
            return [Problem(key, "mismatch",
                            f"{where} lists other packages than the lock installs", tags)], 0
        return [], 0
    # alias: optional (CI publishes it after the commit back), must not be stale
    from envctl.store import records

    try:
        alias = records.load_alias_record(store.get_bytes(key), where=where)
    except MissingObjectError:
        return [], 0
    except EnvctlError as exc:
        return [Problem(key, "invalid", exc.message, tags)], 0
    published = {p: (t.req_id, t.full_id) for p, t in alias.platforms.items()}
    if published != check.expected:
        return [Problem(key, "stale", f"{where} points at other environments than the "
                        "catalog (CI republishes it after the next commit back)", tags,
                        severity="warning")], 0
    return [], 0


def verify_catalog(
    catalog: Catalog,
    store: Store,
    *,
    names: Sequence[str] = (),
    rev: str | None = None,
    records: bool = False,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> VerifyReport:
    """Check the store against the catalog (see the module docstring)."""
    report = VerifyReport(store=store.url, rev=rev)
    aliases = _targets(catalog, names, report)
    if names and not aliases:
        raise NotFoundError(
            f"nothing to verify: {', '.join(report.skipped) or ', '.join(names)} "
            f"({'; '.join(report.skipped.values()) or 'no locked tag'})",
            rule="nothing-to-verify",
            fix="name a locked tag (envctl list shows which are frozen)",
        )
    checks = list(_plan(catalog, aliases, report).values())
    report.objects = sum(1 for c in checks if c.kind != "alias")
    done = 0
    lock = threading.Lock()
    if checks:
        with ThreadPoolExecutor(max_workers=min(workers, len(checks))) as pool:
            futures = {pool.submit(_run, store, c): c for c in checks}
            for future in as_completed(futures):
                problems, size = future.result()
                with lock:
                    report.problems.extend(problems)
                    report.bytes += size
                    done += 1
                if progress is not None:
                    progress(done, len(checks), futures[future].key)
    if records:
        report.problems.extend(check_records(store, workers=workers))
    report.tags.sort()
    report.problems.sort(key=lambda p: (p.severity != "error", p.key or "", p.problem))
    return report


def check_records(store: Store, *, workers: int = WORKERS) -> list[Problem]:
    """Every alias and environment record in the store names only objects that exist."""
    from envctl.lifecycle.gc import kind_of, read_refs

    problems: list[Problem] = []
    present = {i.key for prefix in ("aliases/", "envs/", "locks/", "pkgs/")
               for i in store.list_info(prefix)}
    for kind in ("alias", "env"):
        keys = sorted(k for k in present if kind_of(k) == kind)
        refs, errors = read_refs(store, keys, kind, workers=workers)
        for key, error in sorted(errors.items()):
            problems.append(Problem(key, "invalid", f"{store.describe(key)}: {error}"))
        for key, named in sorted(refs.items()):
            for target in sorted(named - present):
                problems.append(Problem(target, "dangling",
                                        f"{key} names {target}, which is not in the store"))
    return problems
