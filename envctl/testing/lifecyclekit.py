"""A catalog with a dated git history and a store filled the way CI fills it, for the
lifecycle tests (gc, verify, retire, SBOM, audit).

Nothing is solved: each lock is written by :mod:`envctl.testing.handlocks` with
made-up packages whose bytes are a pure function of name, version and platform, so
the sha256 in the lock is the sha256 of what is uploaded and packages with the same
name, version and platform are one shared store object.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envctl import yamlio
from envctl.config import CONFIG_FILE, parse_config
from envctl.meta import load_meta
from envctl.names import Alias, parse_alias
from envctl.resolve.lockfile import read_lock
from envctl.store.base import Store, alias_key, env_record_key, lock_key, package_key
from envctl.store.records import AliasRecord, AliasTarget, EnvRecord, PackageRecord
from envctl.testing import handlocks

PLATFORM = "linux-64"


def package_bytes(name: str, version: str, platform: str = PLATFORM) -> bytes:
    return f"package {name} {version} for {platform}\n".encode() * 40


def pkg(name: str, version: str = "1.0", platform: str = PLATFORM) -> dict[str, Any]:
    """A lock entry whose sha256 is that of :func:`package_bytes`."""
    data = package_bytes(name, version, platform)
    return handlocks.package(name, platform, version=version,
                             sha256=hashlib.sha256(data).hexdigest())


def pkg_key(name: str, version: str = "1.0", platform: str = PLATFORM) -> str:
    entry = pkg(name, version, platform)
    return package_key(entry["hash"]["sha256"], f"{name}-{version}-0.conda")


@dataclass
class CatalogRepo:
    """A catalog work tree whose commits carry the times tests choose."""

    root: Path
    locked: dict[str, bytes] = field(default_factory=dict)  # lock path -> lock bytes

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def env(self, name: str, tags: Mapping[str, Any], **kw: Any) -> None:
        self.write(f"envs/{name}.yaml", handlocks.env_yaml(tags, **kw))

    def lock(self, alias: str, packages: Sequence[Mapping[str, Any]]) -> None:
        """Write the tag's lock and meta (what CI commits back)."""
        files = {CONFIG_FILE: (self.root / CONFIG_FILE).read_text()}
        for path in (self.root / "envs").rglob("*.yaml"):
            files[path.relative_to(self.root).as_posix()] = path.read_text()
        for path in (self.root / "locks").rglob("*.meta.yaml"):
            files[path.relative_to(self.root).as_posix()] = path.read_text()
        for rel, text in handlocks.lock_files(files, alias, packages=list(packages)).items():
            self.write(rel, text)

    def commit(self, message: str, when: datetime) -> str:
        stamp = f"@{int(when.timestamp())} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        subprocess.run(["git", "add", "-A"], cwd=self.root, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=self.root,
                       check=True, env=env)
        return self.head()

    def head(self) -> str:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.root, check=True,
                              capture_output=True, text=True).stdout.strip()

    def config(self) -> Any:
        return parse_config(yamlio.load((self.root / CONFIG_FILE).read_bytes()))


def init_catalog(root: Path, *, mutable_tags: Sequence[str] = ("latest", "candidate", "stable",
                                                                "nightly"),
                 extra: Mapping[str, Any] | None = None, when: datetime | None = None
                 ) -> CatalogRepo:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    repo = CatalogRepo(root)
    repo.write(CONFIG_FILE, handlocks.config_yaml(mutable_tags=mutable_tags, extra=extra))
    repo.write("envs/.gitkeep", "")
    repo.write("locks/.gitkeep", "")
    repo.commit("Create catalog", when or datetime(2020, 1, 1, tzinfo=UTC))
    return repo


# -- publishing (what CI does after it resolves) ------------------------------------------


def _meta(root: Path, alias: Alias) -> Any:
    return load_meta((root / str(alias.meta_path)).read_bytes(), file="meta")


def publish(store: Store, root: Path, alias_text: str, *, alias_record: bool = True,
            commit: str = "c" * 40, files: Mapping[str, Path] | None = None) -> list[str]:
    """Upload the tag's packages, lock and environment records, then its alias record
    (a pointer's record names its target's ids). Returns the keys written.

    ``files`` (sha256 -> local path) holds real package files, for a resolved lock;
    without it each package's bytes are :func:`package_bytes`.
    """

    def size(package: Any) -> int:
        if files is not None:
            return files[package.sha256].stat().st_size
        return len(package_bytes(package.name, package.version, package.platform))

    alias = parse_alias(alias_text)
    config = parse_config(yamlio.load((root / CONFIG_FILE).read_bytes()))
    env = yamlio.load((root / str(alias.env_file)).read_bytes())
    spec = env["tags"][alias.tag]
    target = alias
    if isinstance(spec, dict) and "points_to" in spec:
        target = Alias(alias.name, spec["points_to"])
    meta = _meta(root, target)
    keys: list[str] = []
    if target == alias:
        data = (root / str(alias.lock_path)).read_bytes()
        lock = read_lock(data)
        for package in lock.packages:
            key = package_key(package.sha256 or "", package.filename)
            if files is not None:
                store.put_file(key, files[package.sha256])
            else:
                store.put_bytes(key, package_bytes(package.name, package.version,
                                                   package.platform))
            keys.append(key)
        store.put_lock(data)
        keys.append(lock_key(meta.lock_sha256))
        for platform, ids in meta.platforms.items():
            record = EnvRecord(
                platform=platform,
                req_id=ids.req_id,
                full_id=ids.full_id,
                alias=str(alias),
                lock_sha256=meta.lock_sha256,
                packages=[
                    PackageRecord(filename=p.filename, sha256=p.sha256 or "",
                                  size=size(p), url=p.url)
                    for p in lock.for_platform(platform)
                ],
                resolved_at="2024-01-02T00:00:00Z",
                resolved_by="ci",
                envctl_version="0.1.0",
            )
            store.put_env_record(record)
            keys.append(env_record_key(platform, ids.req_id, ids.full_id))
    if alias_record:
        store.put_alias(AliasRecord(
            name=str(alias.name),
            tag=alias.tag,
            mutable=config.is_mutable(alias.tag),
            target=target.tag if target != alias else None,
            platforms={p: AliasTarget(req_id=m.req_id, full_id=m.full_id)
                       for p, m in meta.platforms.items()},
            lock_sha256=meta.lock_sha256,
            commit=commit,
            published_at="2024-01-02T00:00:00Z",
        ))
        keys.append(alias_key(str(alias.name), alias.tag))
    return keys


def lock_keys_of(root: Path, alias_text: str) -> set[str]:
    """The lock and environment-record keys of a locked tag (not its packages)."""
    alias = parse_alias(alias_text)
    meta = _meta(root, alias)
    return {lock_key(meta.lock_sha256)} | {
        env_record_key(p, m.req_id, m.full_id) for p, m in meta.platforms.items()
    }
