"""``envctl adopt LOCKFILE NAME:TAG``: a conda-lock v1 file made elsewhere becomes a new tag.

What adopt writes, and why: only CI may commit locks (signed), so adopt does not hand a
foreign lock to the catalog. It turns the lock into a *request* that can only ever give
those bits back: a new immutable tag whose spec pins every package exactly,

- conda: ``<logical channel>::name ==version build[sha256=<hex>]``, so the solver can
  pick no other file (a rebuilt file under the same name fails the solve instead of
  slipping in);
- PyPI: ``name==version`` on the catalog's index (a requirement cannot carry a file
  hash; the trial resolve below proves uv picks the very same wheel),

per platform under ``target:`` (pins common to every platform go to ``dependencies``).
The req_id is computed from that spec as for any tag, so CI sees an ordinary pending
tag, resolves it with the commit time as ``exclude_newer``, uploads and commits the
lock signed, and the hook's lock checks (req_id matches the spec, channels allowed,
sha256 everywhere) hold without any special case. Where the tag came from is recorded
in its ``description`` (the original file's name and sha256): committed, reviewed and
shown by ``envctl show``.

Before anything is written, every package is checked:

- a conda package must lie under one of the catalog's channels (URL prefix -> logical
  name; ``channel_map`` maps a mirror's prefix onto a logical channel) and be listed in
  that channel's repodata with the same md5/sha256. An md5-only entry (conda-lock's
  own v1 format requires only md5) gets its sha256 from that repodata when the md5
  matches; the artifact store cannot help here, it is keyed by sha256;
- a PyPI package must be a wheel with a sha256 from the catalog's index: git URLs
  (conda-lock records the commit as the "sha256") and archives without a hash cannot
  be pinned, sdists would have to be built.

Then (unless ``resolve=False``) the tag is resolved locally, like ``envctl extend``
does (into a throw-away folder: the work tree gains only the env file), and its full_id
per platform must equal the adopted lock's; otherwise the env file is put back and the
error lists the packages that differ. A lock that is not
closed (a dependency left out) or a wheel uv would not choose is caught here, not in CI.

Functions return values and raise :class:`~envctl.errors.EnvctlError`; nothing prints.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from envctl.errors import CatalogError, EnvctlError, LockfileError, SolveError
from envctl.names import Alias, parse_alias
from envctl.resolve.channels import ChannelRef, channel_of, redact

if TYPE_CHECKING:
    from envctl.config import CatalogConfig
    from envctl.resolve.api import TagResult
    from envctl.resolve.lockfile import LockedPackage

#: conda-lock installs main and dev by default (``conda-lock install --dev``).
DEFAULT_CATEGORIES = ("main", "dev")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+", "git://")


@dataclass(frozen=True)
class AdoptedPlatform:
    platform: str
    full_id: str  # of the adopted packages: what CI's resolve must give back
    conda: tuple[str, ...]  # the pins written
    pypi: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "full_id": self.full_id,
                "conda_packages": len(self.conda), "pypi_packages": len(self.pypi)}


@dataclass(frozen=True)
class AdoptResult:
    alias: str
    file: Path  # the environment file written
    source: str  # the adopted lockfile, as given
    source_sha256: str  # of its bytes: the provenance recorded in the tag
    channels: tuple[str, ...]
    platforms: tuple[AdoptedPlatform, ...]
    filled: tuple[str, ...] = ()  # files whose sha256 came from their channel's repodata
    dropped: tuple[str, ...] = ()  # "name (platform)" left out by the category choice
    resolved: TagResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "file": str(self.file),
            "adopted_from": self.source,
            "adopted_sha256": self.source_sha256,
            "channels": list(self.channels),
            "platforms": [p.to_dict() for p in self.platforms],
            "sha256_filled_from_channel": list(self.filled),
            "dropped": list(self.dropped),
            "resolve": self.resolved.to_dict() if self.resolved else None,
        }


def adopt(
    root: str | os.PathLike[str],
    lockfile: str | os.PathLike[str],
    alias: str,
    *,
    categories: Sequence[str] | None = None,
    channel_map: Mapping[str, str] | None = None,
    description: str | None = None,
    owners: Sequence[str] = (),
    resolve: bool = True,
    resolved_at: datetime,
    resolved_by: str,
    exclude_newer: Any = None,
    gateway: Any = None,
) -> AdoptResult:
    """Adopt ``lockfile`` as tag ``alias`` of the catalog work tree ``root`` (module doc).

    ``categories`` (default main and dev, as ``conda-lock install``) choose which of the
    lock's entries belong to the environment. ``channel_map`` maps a URL prefix the lock
    uses (a mirror) onto a logical channel of catalog.yaml; the package must then be in
    that channel with the same hashes. ``resolve=False`` writes the tag only (CI resolves
    it); otherwise it is resolved with ``exclude_newer`` (the CLI passes "now") and must
    give the adopted packages back exactly.
    """
    from envctl.catalog import Catalog, WorkTreeSource
    from envctl.report.locks import read_lock_path

    root = Path(root)
    path = Path(lockfile)
    catalog = Catalog(WorkTreeSource(root))
    config = catalog.config
    target = _check_target(catalog, alias)
    ctx = _Context(str(path), target.tag)

    lock = read_lock_path(path)  # tolerant: repeated categories, md5-only, pip from git...
    original = path.read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    wanted = set(categories or DEFAULT_CATEGORIES) | {"main"}
    chosen = [p for p in lock.packages if wanted & set(p.categories)]
    dropped = tuple(sorted(f"{p.name} ({p.platform})" for p in lock.packages
                           if not wanted & set(p.categories)))
    if not chosen:
        raise ctx.error(f"{path.name} locks no packages in categories {', '.join(sorted(wanted))}",
                        rule="empty-lock", fix="choose the categories it has with --category")

    refs = _channel_refs(config, root)
    mapped = _mapped_refs(channel_map or {}, refs, config, ctx)
    placed = {p: _channel_for(p, refs, mapped, config, ctx) for p in chosen
              if p.manager == "conda"}
    confirmed, filled = _check_with_repodata(placed, ctx, gateway)
    pypi = [p for p in chosen if p.manager == "pip"]
    for package in pypi:
        _check_pip(package, config, ctx)

    packages = [*confirmed.values(), *pypi]
    platforms = sorted({p.platform for p in packages})
    _check_platforms(platforms, packages, ctx)
    used = {ref.name for ref in placed.values()}
    channels = tuple(name for name in config.channels if name in used)
    by_platform = _pins(packages, {confirmed[p].key: ref for p, ref in placed.items()})
    adopted = tuple(_platform_result(p, packages, by_platform[p]) for p in platforms)
    note = f"adopted from {path.name} (sha256 {digest})"
    note = f"{description} ({note})" if description else note
    spec = _spec(note, channels, platforms, by_platform)

    written, before = _write_tag(root, target, spec, owners)
    result = AdoptResult(str(target), written, str(path), digest, channels, adopted,
                         tuple(sorted(filled)), dropped)
    if not resolve:
        return result
    try:
        resolved = _trial_resolve(root, target, adopted, packages, resolved_at=resolved_at,
                                  resolved_by=resolved_by, exclude_newer=exclude_newer)
    except BaseException:
        # A refused adopt leaves nothing behind: the env file as it was, no trial lock.
        _restore(root, target, written, before)
        raise
    return replace(result, resolved=resolved)


# -- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Where errors point: the adopted file and the tag being made."""

    file: str
    tag: str

    def error(self, message: str, *, rule: str, fix: str, kind: type[EnvctlError] = LockfileError,
              ) -> EnvctlError:
        return kind(message, file=self.file, tag=self.tag, rule=rule, fix=fix)


def _check_target(catalog: Any, alias: str) -> Alias:
    """A new, immutable ``name:tag`` in a valid place of the catalog."""
    from envctl.edit.checks import check_env_free, check_tag_free
    from envctl.edit.document import load_doc
    from envctl.errors import InvalidNameError

    target = parse_alias(alias)
    if not target.explicit_tag:
        raise InvalidNameError(f"{alias!r} names no tag", rule="missing-tag",
                               fix=f"give the tag to create, e.g. {target.name}:v1")
    rel = str(target.env_file)
    if catalog.is_mutable(target.tag):
        raise CatalogError(
            f"{target.tag} is a mutable tag; an adopted lock becomes an immutable tag",
            file=rel, tag=target.tag, rule="mutable-tag",
            fix=f"adopt it as e.g. {target.name}:v1, then point {target.tag} at it "
            f"('envctl tag {target.name}:{target.tag} --points-to v1')",
        )
    doc = load_doc(catalog.source.root, target.name)
    if doc is None:
        check_env_free(catalog, target.name)
        return target
    try:
        check_tag_free(doc, target)
    except CatalogError as exc:
        if exc.rule != "tag-exists":
            raise
        from envctl.resolve.extends import next_tag

        free = next_tag(target.tag, [str(t) for t in doc.tags])
        raise CatalogError(exc.message, file=exc.file, tag=exc.tag, rule=exc.rule,
                           fix=f"adopt it as a new tag, e.g. {target.name}:{free}") from None
    return target


def _channel_refs(config: CatalogConfig, root: Path) -> list[ChannelRef]:
    """Every channel of catalog.yaml usable from here. One that is not (its credentials not
    set, its folder missing) is left out rather than failing: the lock may not need it,
    and a package from it is then refused as coming from outside the catalog's channels."""
    from envctl.resolve.channels import channel_refs

    refs = []
    for name in config.channels:
        try:
            refs.extend(channel_refs([name], config.channels, root))
        except EnvctlError:
            continue
    return refs


def _mapped_refs(channel_map: Mapping[str, str], refs: Sequence[ChannelRef],
                 config: CatalogConfig, ctx: _Context) -> list[tuple[str, ChannelRef]]:
    """``(URL prefix, channel)`` for each ``--map-channel URL=NAME``, longest prefix first."""
    by_name = {r.name: r for r in refs}
    out = []
    for prefix, name in channel_map.items():
        if name not in by_name:
            raise ctx.error(
                f"--map-channel {prefix}={name}: {name!r} is not a channel of catalog.yaml"
                + (" (or its credentials are not set)" if name in config.channels else ""),
                rule="unknown-channel", kind=CatalogError,
                fix=f"map onto one of: {', '.join(by_name) or '(none declared)'}",
            )
        out.append((redact(prefix).rstrip("/") + "/", by_name[name]))
    return sorted(out, key=lambda item: -len(item[0]))


def _channel_for(package: LockedPackage, refs: Sequence[ChannelRef],
                 mapped: Sequence[tuple[str, ChannelRef]], config: CatalogConfig,
                 ctx: _Context) -> ChannelRef:
    ref = channel_of(package.url, refs)
    if ref is not None:
        return ref
    url = redact(package.url)
    for prefix, mapped_ref in mapped:
        if url.startswith(prefix):
            return mapped_ref
    channel_dir = url.rsplit("/", 2)[0]
    declared = ", ".join(f"{r.name}={r.public_url}" for r in refs) or "none"
    raise ctx.error(
        f"{package.filename} ({package.platform}) comes from {channel_dir}, which is not one "
        f"of the catalog's channels ({declared})",
        rule="channel-not-allowed",
        fix=f"declare that channel in catalog.yaml in a reviewed change, or if it mirrors one "
        f"of them, pass --map-channel {channel_dir}=NAME (packages are then checked against "
        "NAME's repodata by sha256)",
    )


def _is_sha256(value: str | None) -> bool:
    return bool(value) and _HEX64.fullmatch((value or "").lower()) is not None


def _check_with_repodata(
    placed: Mapping[LockedPackage, ChannelRef], ctx: _Context, gateway: Any
) -> tuple[dict[LockedPackage, LockedPackage], set[str]]:
    """Each conda package -> the same with its sha256 confirmed (or filled) from its
    channel's repodata, and the filenames whose sha256 was filled in.

    Name, version and build are taken from the repodata record too: the file is what the
    hashes identify, and older conda-lock files leave ``build`` out.
    """
    records = _repodata(placed, gateway, ctx)
    out: dict[LockedPackage, LockedPackage] = {}
    filled: set[str] = set()
    problems: dict[str, list[str]] = {}
    for package, ref in placed.items():
        record = records.get((ref.name, package.subdir or "", package.filename))
        label = f"{package.filename} ({package.platform})"
        has_sha = _is_sha256(package.sha256)
        if record is None:
            rule = "not-in-channel" if has_sha or package.md5 else "missing-sha256"
            problems.setdefault(rule, []).append(label)
            continue
        sha = record.sha256.hex() if record.sha256 is not None else None
        md5 = record.md5.hex() if record.md5 is not None else None
        if has_sha and (package.sha256 or "").lower() != sha:
            problems.setdefault("sha256-mismatch", []).append(label)
        elif package.md5 and md5 and package.md5.lower() != md5:
            problems.setdefault("md5-mismatch", []).append(label)
        elif (not has_sha and not package.md5) or sha is None:
            problems.setdefault("missing-sha256", []).append(label)
        else:
            if not has_sha:
                filled.add(package.filename)
            out[package] = replace(package, name=record.name.normalized,
                                   version=str(record.version), build=str(record.build),
                                   sha256=sha, md5=package.md5 or md5)
    if problems:
        raise _repodata_error(problems, placed, ctx)
    return out, filled


def _repodata_error(problems: Mapping[str, list[str]], placed: Mapping[LockedPackage, ChannelRef],
                    ctx: _Context) -> EnvctlError:
    channels = ", ".join(sorted({r.name for r in placed.values()}))

    def names(labels: list[str]) -> str:
        more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
        return ", ".join(labels[:3]) + more

    if "sha256-mismatch" in problems or "md5-mismatch" in problems:
        rule = "sha256-mismatch" if "sha256-mismatch" in problems else "md5-mismatch"
        kind = rule.split("-")[0]
        return ctx.error(
            f"{names(problems[rule])}: the lock's {kind} differs from the one in channel "
            f"{channels}'s repodata (a different file under the same name)",
            rule=rule,
            fix="re-lock from the catalog's channels (conda-lock -c <channel URL>); envctl "
            "adopts only files the channel serves byte for byte",
        )
    if "missing-sha256" in problems:
        return ctx.error(
            f"{names(problems['missing-sha256'])}: no sha256 in the lock and none in channel "
            f"{channels}'s repodata",
            rule="missing-sha256",
            fix="envctl verifies every package by sha256: re-lock with a conda-lock that "
            "records sha256, or from a channel whose repodata lists it",
        )
    return ctx.error(
        f"{names(problems['not-in-channel'])}: not in channel {channels}'s repodata, so its "
        "hash cannot be confirmed and CI could not install it",
        rule="not-in-channel",
        fix="re-lock against the catalog's channels, or add the package to the channel",
    )


def _repodata(placed: Mapping[LockedPackage, ChannelRef], gateway: Any,
              ctx: _Context) -> dict[tuple[str, str, str], Any]:
    """``(channel, subdir, filename) -> RepoDataRecord`` for every package, one rattler
    query per channel and subdir (rattler reads ``file://``, sharded and zst repodata)."""
    import asyncio

    from rattler import Channel

    from envctl.resolve.conda import channel_errors, make_gateway, run_rattler

    groups: dict[tuple[str, str], tuple[ChannelRef, set[str]]] = {}
    for package, ref in placed.items():
        key = (ref.name, package.subdir or "")
        groups.setdefault(key, (ref, set()))[1].add(package.name)
    if not groups:
        return {}
    gateway = gateway or make_gateway()
    keys = sorted(groups)

    async def query_all() -> list[Any]:
        return list(await asyncio.gather(*(
            gateway.query([Channel(groups[k][0].url)], [k[1]], sorted(groups[k][1]),
                          recursive=False)
            for k in keys
        )))

    try:
        answers = run_rattler(query_all())
    except channel_errors() as exc:  # the channel could not be read: say which and why
        public = ", ".join(sorted({groups[k][0].public_url for k in keys}))
        message = str(exc)
        for ref, _ in groups.values():
            message = message.replace(ref.url, ref.public_url)
        raise ctx.error(
            f"cannot read the repodata of {public}: {message.splitlines()[0] if message else exc}",
            rule="channel-unreachable", kind=SolveError,
            fix="adopt checks every package against its channel; make the channel reachable",
        ) from None
    out: dict[tuple[str, str, str], Any] = {}
    for key, answer in zip(keys, answers, strict=True):
        for records in answer:
            for record in records:
                out[(key[0], key[1], record.file_name)] = record
    return out


def _check_pip(package: LockedPackage, config: CatalogConfig, ctx: _Context) -> None:
    from envctl.lockcheck import pypi_url_allowed

    label = f"PyPI package {package.name} {package.version} ({package.platform})"
    url = package.url
    if url.startswith(_VCS_SCHEMES) or url.startswith(("git@", "ssh://")):
        raise ctx.error(
            f"{label} comes from {redact(url)}: a git URL names a commit, not a file, so it "
            "cannot be pinned by sha256 (conda-lock records the commit as its 'sha256')",
            rule="pip-vcs",
            fix="build a wheel of that commit and publish it on the catalog's PyPI index (or "
            "package it for a conda channel), re-lock from there, then adopt",
        )
    if not url or (urlsplit(url).scheme == "file" and not url.endswith(".whl")):
        raise ctx.error(
            f"{label} comes from a local path ({redact(url) or 'none recorded'})",
            rule="pip-local",
            fix="publish it on the catalog's PyPI index and re-lock from there",
        )
    if not _is_sha256(package.sha256):
        raise ctx.error(
            f"{label} comes from {redact(url)} without a sha256",
            rule="missing-sha256",
            fix="pin the archive with '#sha256=<hash>' in the requirement and re-lock, or "
            "install it from the catalog's PyPI index",
        )
    filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not filename.endswith(".whl"):
        raise ctx.error(
            f"{label} is a source archive ({filename}); envctl installs PyPI packages from "
            "wheels only (building would run code and need build tools)",
            rule="sdist",
            fix="publish a wheel of it on the catalog's PyPI index and re-lock from there",
        )
    origins = _pypi_origins(config)
    if not pypi_url_allowed(url, origins):
        raise ctx.error(
            f"{label} comes from {redact(url)}, outside the catalog's PyPI index "
            f"({', '.join(sorted(origins)) or 'none declared'})",
            rule="channel-not-allowed",
            fix="set pypi_index in catalog.yaml (a reviewed change), or re-lock from that index",
        )


def _pypi_origins(config: CatalogConfig) -> set[str]:
    if not config.pypi_index or "://" not in config.pypi_index:
        return set()
    parts = urlsplit(redact(config.pypi_index))
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    # pypi.org's files live on files.pythonhosted.org (as lockcheck allows).
    return {origin, "https://files.pythonhosted.org"} if origin == "https://pypi.org" else {origin}


def _check_platforms(platforms: Sequence[str], packages: Sequence[LockedPackage],
                     ctx: _Context) -> None:
    from envctl.config import check_platform

    for platform in platforms:
        try:
            check_platform(platform)
        except ValueError as exc:
            raise ctx.error(str(exc), rule="unknown-platform", kind=CatalogError,
                            fix="envctl locks the platforms rattler can solve for") from None
        mine = [p for p in packages if p.platform == platform]
        if any(p.manager == "pip" for p in mine) and not any(
            p.manager == "conda" and p.name == "python" for p in mine
        ):
            raise ctx.error(
                f"the lock installs PyPI packages on {platform} but no conda python",
                rule="missing-python",
                fix="envctl installs PyPI packages into a conda python: re-lock with python "
                "among the conda dependencies",
            )


# -- the spec -----------------------------------------------------------------------------------


def conda_pin(package: LockedPackage, channel: str) -> str:
    """``<channel>::name ==version build[sha256=<hex>]``: that file, from that channel."""
    return f"{channel}::{package.name} =={package.version} {package.build}[sha256={package.sha256}]"


def pypi_pin(package: LockedPackage) -> str:
    from packaging.utils import canonicalize_name

    return f"{canonicalize_name(package.name)}=={package.version}"


def _pins(packages: Iterable[LockedPackage], channels: Mapping[tuple[str, str, str], ChannelRef],
          ) -> dict[str, tuple[list[str], list[str]]]:
    out: dict[str, tuple[list[str], list[str]]] = {}
    for package in packages:
        conda, pypi = out.setdefault(package.platform, ([], []))
        if package.manager == "conda":
            conda.append(conda_pin(package, channels[package.key].name))
        else:
            pypi.append(pypi_pin(package))
    return {p: (sorted(c), sorted(y)) for p, (c, y) in out.items()}


def _platform_result(platform: str, packages: Sequence[LockedPackage],
                     pins: tuple[list[str], list[str]]) -> AdoptedPlatform:
    from envctl.resolve.ids import full_id

    mine = [p for p in packages if p.platform == platform]
    return AdoptedPlatform(platform, full_id(platform, mine), tuple(pins[0]),  # type: ignore[arg-type]
                           tuple(pins[1]))


def _spec(description: str, channels: Sequence[str], platforms: Sequence[str],
          pins: Mapping[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    """The tag: pins every platform shares at the top (shorter to review), the rest under
    ``target:``. The req_id merges both per platform, so the split does not change it."""
    def common(index: int) -> list[str]:
        if len(platforms) < 2:
            return []
        shared = set(pins[platforms[0]][index])
        for platform in platforms[1:]:
            shared &= set(pins[platform][index])
        return sorted(shared)

    shared_conda, shared_pypi = common(0), common(1)
    spec: dict[str, Any] = {"description": description, "channels": list(channels),
                            "platforms": list(platforms)}
    if shared_conda:
        spec["dependencies"] = shared_conda
    if shared_pypi:
        spec["pypi"] = shared_pypi
    target: dict[str, Any] = {}
    for platform in platforms:
        conda = [c for c in pins[platform][0] if c not in shared_conda]
        pypi = [r for r in pins[platform][1] if r not in shared_pypi]
        extra: dict[str, Any] = {}
        if conda:
            extra["dependencies"] = conda
        if pypi:
            extra["pypi"] = pypi
        if extra:
            target[platform] = extra
    if target:
        spec["target"] = target
    return spec


# -- writing and the trial resolve --------------------------------------------------------------


def _write_tag(root: Path, target: Alias, spec: dict[str, Any],
               owners: Sequence[str]) -> tuple[Path, bytes | None]:
    """Add the tag with a round-trip edit (comments and layout of the file kept)."""
    from envctl.edit.document import add_tag, load_doc, new_doc, save_doc

    doc = load_doc(root, target.name)
    if doc is not None and owners:
        raise CatalogError(
            f"{target.name} already exists; --owner only applies to a new environment",
            file=doc.rel, tag=target.tag, rule="owners-existing",
            fix=f"edit 'owners:' in {doc.rel} in its own reviewed change",
        )
    before = doc.original if doc is not None else None
    if doc is None:
        doc = new_doc(root, target.name, description=None, owners=owners)
    add_tag(doc, target.tag, spec)
    save_doc(doc)
    return doc.path, before


def _restore(root: Path, target: Alias, written: Path, before: bytes | None) -> None:
    if before is None:
        written.unlink(missing_ok=True)
    else:
        written.write_bytes(before)


def _trial_resolve(
    root: Path, target: Alias, adopted: Sequence[AdoptedPlatform],
    packages: Sequence[LockedPackage], *, resolved_at: datetime, resolved_by: str,
    exclude_newer: Any,
) -> TagResult:
    """Resolve the pinned tag as CI will; it must give back exactly the adopted packages.

    A trial: the locks go to a throw-away folder (only CI commits locks)."""
    import tempfile

    from envctl.resolve.api import resolve_tag
    from envctl.resolve.lockfile import read_lock

    with tempfile.TemporaryDirectory(prefix="envctl-adopt-") as scratch:
        result = resolve_tag(root, target, resolved_at=resolved_at, resolved_by=resolved_by,
                             exclude_newer=exclude_newer, output=Path(scratch))
        lock = read_lock((Path(scratch) / str(target.lock_path)).read_bytes())
    result = replace(result, lock_path=None, meta_path=None,
                     message="resolved as a trial: it gives back the adopted packages; no lock "
                     "written (CI locks the tag once it is merged)")
    got = {p.platform: p.full_id for p in result.platforms}
    bad = [a for a in adopted if got.get(a.platform) != a.full_id]
    if not bad:
        return result
    platform = bad[0].platform
    want = {p.filename: p.sha256 for p in packages if p.platform == platform}
    have = {p.filename: p.sha256 for p in lock.for_platform(platform)}
    extra = sorted(f for f in have if f not in want)
    missing = sorted(f for f in want if f not in have)
    changed = sorted(f for f in want if f in have and have[f] != want[f])
    parts = [f"{label} {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
             for label, files in (("adds", extra), ("leaves out", missing),
                                  ("changes", changed)) if files]
    raise SolveError(
        f"resolving the pinned tag on {platform} does not reproduce the adopted lock: it "
        + "; ".join(parts or ["picks other files"]),
        file=str(target.env_file), tag=target.tag, rule="adopt-mismatch",
        fix="the lock is not complete for these channels (a dependency missing, or a wheel "
        "the index would not choose); re-lock it against the catalog's channels and index, "
        "or adopt with --category to include the missing category",
    )

