"""A written lock and its meta agree with each other, with the spec and with the channels.

Part of :mod:`envctl.policy` (pure: no git, no files), split out to keep modules small.
Checked when a commit adds or changes a lock:

- ``meta.alias`` is the lock's tag and ``meta.lock_sha256`` is the lock's sha256;
- per platform, the req_id recomputed from the spec as committed (with the meta's recorded
  ``exclude_newer`` and base ``full_id``) equals the recorded one, and so does the lock's
  ``content_hash``; the platforms are the spec's; the base full_id is the base's;
- the full_id recomputed from the lock's packages equals the recorded one;
- every package has a sha256, and comes from the tag's channels as the config *before the
  push* maps them (a push cannot add its own channel), PyPI packages from the configured
  index's origin.

Channel values and package URLs: a URL value is a prefix once credentials are removed; a
bare name means ``https://conda.anaconda.org/<name>``; a path (the resolver's machine made
it a ``file://`` URL) matches a ``file://`` URL whose channel folder ends with that path. A
bare name may also be a folder of the catalog, so it matches both ways.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from envctl.config import CatalogConfig
from envctl.errors import EnvctlError, PolicyError
from envctl.meta import Meta
from envctl.names import Alias, parse_alias
from envctl.resolve.channels import DEFAULT_CHANNEL_ALIAS, redact

REFIX = "let CI re-resolve the tag; never edit lock files by hand"


@dataclass(frozen=True)
class LockInput:
    alias: Alias
    meta: Meta
    lock: bytes
    spec: Any  # EffectiveSpec, or None when it could not be built (reported elsewhere)
    tree_config: CatalogConfig  # the tree's own config: what CI resolved it with
    push_config: CatalogConfig  # the config before the push: allowed channels
    base_meta: Callable[[Alias], Meta | None]


def check_lock_content(item: LockInput) -> list[EnvctlError]:
    return _Check(item).run()


class _Check:
    def __init__(self, item: LockInput) -> None:
        self.item = item
        self.out: list[EnvctlError] = []
        self.lock_path = str(item.alias.lock_path)
        self.meta_path = str(item.alias.meta_path)

    def refuse(self, message: str, *, rule: str, meta: bool = False,
               fix: str = REFIX) -> None:
        self.out.append(PolicyError(message, file=self.meta_path if meta else self.lock_path,
                                    tag=self.item.alias.tag, rule=rule, fix=fix))

    def run(self) -> list[EnvctlError]:
        from envctl.resolve.lockfile import read_lock

        item, meta = self.item, self.item.meta
        if meta.alias != str(item.alias):
            self.refuse(f"meta is for {meta.alias}, not {item.alias}", rule="invalid-lockfile",
                        meta=True)
        digest = hashlib.sha256(item.lock).hexdigest()
        if meta.lock_sha256 != digest:
            self.refuse(f"meta records lock sha256 {meta.lock_sha256[:12]}..., the lock file "
                        f"has {digest[:12]}...", rule="lock-hash-mismatch", meta=True)
        if item.spec is not None:
            self.check_requests()
        try:
            lock = read_lock(item.lock, file=self.lock_path)
        except EnvctlError as exc:
            self.out.append(PolicyError(exc.message, file=self.lock_path, tag=item.alias.tag,
                                        rule=exc.rule, fix=exc.fix or REFIX))
            return self.out
        self.check_packages(lock)
        return self.out

    # -- ids -------------------------------------------------------------------------------

    def check_requests(self) -> None:
        from envctl.spec import build_request

        item, meta, spec = self.item, self.item.meta, self.item.spec
        if set(meta.platforms) != set(spec.platforms):
            self.refuse(
                f"meta covers platforms {', '.join(sorted(meta.platforms)) or '(none)'} but the "
                f"spec declares {', '.join(sorted(spec.platforms))}",
                rule="lock-platforms", meta=True,
            )
        for platform, pm in sorted(meta.platforms.items()):
            if pm.request.req_id != pm.req_id:
                self.refuse(f"{platform}: the recorded request does not hash to the recorded "
                            "req_id", rule="req-id-mismatch", meta=True)
                continue
            if platform not in spec.platforms:
                continue
            base_full_id = self.base_full_id(platform, pm.request.base_full_id)
            try:
                request = build_request(spec, platform, item.tree_config,
                                        base_full_id=base_full_id,
                                        exclude_newer=meta.exclude_newer)
            except EnvctlError as exc:
                self.out.append(exc)
                return
            if request.req_id != pm.req_id:
                self.refuse(
                    f"{platform}: the lock was resolved for req_id {pm.req_id[:12]}..., but the "
                    f"spec as committed gives {request.req_id[:12]}...",
                    rule="req-id-mismatch", meta=True,
                )

    def base_full_id(self, platform: str, recorded: str | None) -> str | None:
        """The base full_id the request must carry; checked against the base's own meta."""
        spec = self.item.spec
        if spec.base is None:
            return None
        base = parse_alias(spec.base)
        try:
            base_meta = self.item.base_meta(base)
        except EnvctlError:
            base_meta = None
        actual = None
        if base_meta is not None and platform in base_meta.platforms:
            actual = base_meta.platforms[platform].full_id
        if actual is None:
            self.refuse(f"{platform}: the base {base} has no lock for this platform",
                        rule="base-mismatch", meta=True,
                        fix=f"lock {base} first; CI resolves bases before the tags extending them")
        elif recorded != actual:
            self.refuse(f"{platform}: the lock was resolved on base full_id "
                        f"{str(recorded)[:12]}..., but {base} is {actual[:12]}...",
                        rule="base-mismatch", meta=True)
        return recorded

    # -- packages --------------------------------------------------------------------------

    def check_packages(self, lock: Any) -> None:
        meta = self.item.meta
        channel_values = self.channel_values()
        pypi_origins = self.pypi_origins()
        hashless: set[str] = set()
        for pkg in lock.packages:
            label = f"{pkg.name}={pkg.version} ({pkg.platform})"
            if not pkg.sha256 or len(pkg.sha256) != 64:
                hashless.add(pkg.platform)
                self.refuse(f"package {label} has no sha256", rule="missing-sha256",
                            fix="envctl verifies every download by sha256; let CI re-resolve")
            if pkg.manager == "conda" and not conda_url_allowed(pkg.url, channel_values):
                self.refuse(
                    f"package {label} comes from {pkg.url}, outside the tag's channels "
                    f"({', '.join(channel_values) or 'none declared'})",
                    rule="channel-not-allowed",
                    fix="resolve only from channels catalog.yaml declares (before this push)",
                )
            elif pkg.manager == "pip" and not pypi_url_allowed(pkg.url, pypi_origins):
                self.refuse(
                    f"package {label} comes from {pkg.url}, outside the allowed PyPI indexes "
                    f"({', '.join(sorted(pypi_origins)) or 'none declared'})",
                    rule="channel-not-allowed",
                    fix="set pypi_index in catalog.yaml (before this push) or pypi_options",
                )
            if pkg.platform not in meta.platforms:
                self.refuse(f"package {label} is for a platform the meta does not cover",
                            rule="lock-platforms")
        for platform, pm in sorted(meta.platforms.items()):
            recorded = lock.req_id(platform)
            if recorded is not None and recorded != pm.req_id:
                self.refuse(f"{platform}: the lock's content_hash {recorded[:12]}... is not the "
                            f"meta's req_id {pm.req_id[:12]}...", rule="req-id-mismatch")
            if platform in hashless:
                continue
            try:
                computed = lock.full_id(platform)
            except (EnvctlError, ValueError) as exc:
                self.refuse(f"{platform}: {exc}", rule="invalid-lockfile")
                continue
            if computed != pm.full_id:
                self.refuse(f"{platform}: the lock's packages give full_id {computed[:12]}..., "
                            f"the meta records {pm.full_id[:12]}...", rule="full-id-mismatch",
                            meta=True)

    def channel_values(self) -> list[str]:
        config = self.item.push_config
        spec = self.item.spec
        names = spec.channels if spec is not None else list(config.channels)
        return [config.channels[n] for n in names if n in config.channels]

    def pypi_origins(self) -> set[str]:
        config, spec = self.item.push_config, self.item.spec
        urls = [config.pypi_index or ""]
        options = getattr(spec, "pypi_options", None)
        if options is not None:
            urls += [options.index_url or "", *options.extra_index_urls, *options.find_links]
        origins = {_origin(u) for u in urls if "://" in u}
        if "https://pypi.org" in origins:
            origins.add("https://files.pythonhosted.org")  # where pypi.org's files live
        return origins


def _origin(url: str) -> str:
    parts = urlsplit(redact(url))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _clean_path(url: str) -> list[str] | None:
    """The URL's path segments; None when it could escape a prefix (``..``, query...)."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/")]
    if parts.query or parts.fragment or {".", ".."} & set(segments):
        return None
    return segments


def conda_url_allowed(url: str, channel_values: Sequence[str]) -> bool:
    """Whether a conda package URL lies in one of the channels (catalog.yaml values)."""
    segments = _clean_path(url)
    if segments is None or len(segments) < 3:
        return False
    channel_dir = "/".join(segments[:-2])  # drop <subdir>/<file>
    for value in channel_values:
        if "://" in value:
            prefix = redact(value).rstrip("/") + "/"
            if url.startswith(prefix):
                return True
            continue
        bare = "/" not in value and not value.startswith((".", "~"))
        if bare and url.startswith(f"{DEFAULT_CHANNEL_ALIAS}/{value}/"):
            return True
        if urlsplit(url).scheme != "file":
            continue
        local = posixpath.normpath(value.replace("\\", "/"))
        if value.startswith("/"):
            if channel_dir == local:
                return True
            continue
        # Relative to a catalog root on the resolver's machine: match what follows "../".
        suffix = "/".join(p for p in local.split("/") if p not in ("", ".", "..", "~"))
        if suffix and channel_dir.endswith("/" + suffix):
            return True
    return False


def pypi_url_allowed(url: str, origins: set[str]) -> bool:
    return _clean_path(url) is not None and _origin(url) in origins
