"""One platform's conda solve with py-rattler, and errors a person can act on.

Everything is explicit so a solve means the same on any host: the channels in the
request's order (strict priority), the target platform plus ``noarch``, the
platform's virtual packages from the request (never the host's), and
``exclude_newer``. rattler reads ``file://`` channels directly and can solve for
any platform from any host.
"""

from __future__ import annotations

import asyncio
import atexit
import difflib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from envctl.errors import SolveError
from envctl.resolve.channels import ChannelRef, channel_of, redact
from envctl.resolve.lockfile import LockedPackage

if TYPE_CHECKING:
    from rattler import Gateway

#: A solve that takes longer than this is reported as an error rather than left hanging.
SOLVE_TIMEOUT = timedelta(minutes=5)

_NO_CANDIDATES = re.compile(
    r"No candidates were found for ([A-Za-z0-9_.\-]+)(?: ([^\n]*?))?\.?$", re.MULTILINE
)
#: "tinynum 2.0 | 2.1 is excluded because the package is uploaded after the cutoff date ..."
_EXCLUDED = re.compile(
    r"([A-Za-z0-9_.\-]+) (\S+(?: \| \S+)*) is excluded because the package is uploaded after "
    r"the cutoff date"
)
#: What rattler says when the solve ran out of its ``timeout``.
_CANCELLED = "Solve operation has been cancelled"
_MISSING_DEP = re.compile(r"([A-Za-z0-9_.\-]+)[^,\n]*, for which no candidates were found")
_TREE_PREFIX = re.compile(r"^[\s│├└─]+")


@dataclass(frozen=True)
class CondaRequest:
    """What one platform's conda solve needs; built from a :class:`envctl.spec.Request`."""

    platform: str
    specs: tuple[str, ...]  # normalised match specs; ``<logical>::pkg`` allowed
    channels: tuple[ChannelRef, ...]
    virtual_packages: Mapping[str, str]  # name -> "version" or "version=build"
    exclude_newer: datetime | None = None


# py-rattler 0.28 answers an awaited call from a tokio thread that still holds a Python
# thread state for a moment after the caller resumes; if the interpreter starts shutting
# down in that moment, the process aborts ("PyGILState_Release: thread state ... must be
# current") or segfaults (seen ~5% of short scripts). So the first rattler call registers an
# exit hook that waits until SETTLE seconds have passed since the last one.
SETTLE = 0.25
_last_call = 0.0
_hook_lock = threading.Lock()
_hooked = False


def _settle_at_exit() -> None:
    wait = SETTLE - (time.monotonic() - _last_call)
    if wait > 0:
        time.sleep(wait)


def run_rattler(coroutine: Any) -> Any:
    """``asyncio.run`` for a rattler coroutine, remembering when it ended (see SETTLE)."""
    global _hooked, _last_call
    with _hook_lock:
        if not _hooked:
            atexit.register(_settle_at_exit)
            _hooked = True
    try:
        return asyncio.run(coroutine)
    finally:
        _last_call = time.monotonic()


def make_gateway() -> Gateway:
    """One gateway per run: it caches repodata between platforms and tags."""
    from rattler import Gateway

    return Gateway()


def rattler_spec(spec: str, channels: Sequence[ChannelRef]) -> str:
    """Replace a logical ``name::`` channel prefix with the channel's URL."""
    head, sep, rest = spec.partition("::")
    if not sep:
        return spec
    for ref in channels:
        if ref.name == head:
            return f"{ref.url}::{rest}"
    names = ", ".join(r.name for r in channels)
    raise SolveError(
        f"{spec!r} names channel {head!r}, which this tag does not use",
        rule="unknown-channel",
        fix=f"use one of this tag's channels ({names}) or add {head!r} to its channels",
    )


def _virtual_packages(values: Mapping[str, str]) -> list[Any]:
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    out = []
    for name, text in sorted(values.items()):
        version, _, build = text.partition("=")
        try:
            out.append(
                GenericVirtualPackage(
                    PackageName(name), Version(version or "0"), BuildString(build or "0")
                )
            )
        except (*spec_errors(), ValueError) as exc:
            raise SolveError(
                f"virtual package {name}={text!r} is not valid: {exc}",
                rule="invalid-virtual-package",
                fix="write it as a version, optionally with a build: '2.17' or '1=x86_64'",
            ) from None
    return out


def _dependencies(depends: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["python >=3.8", "six"]`` -> (("python", ">=3.8"), ("six", "")), conda-lock's shape."""
    merged: dict[str, list[str]] = {}
    for dep in depends:
        name, _, constraint = dep.strip().partition(" ")
        parts = merged.setdefault(name, [])
        if constraint.strip() and constraint.strip() not in parts:
            parts.append(constraint.strip())
    return tuple(sorted((name, ",".join(parts)) for name, parts in merged.items()))


def to_locked(record: Any, platform: str) -> LockedPackage:
    """A rattler ``RepoDataRecord`` as a lock entry for ``platform`` (URL without credentials)."""
    if record.md5 is None or record.sha256 is None:
        raise SolveError(
            f"{record.file_name} has no md5/sha256 in its channel's repodata",
            rule="missing-hash",
            fix="re-index the channel: envctl records and verifies both hashes of every package",
        )
    return LockedPackage(
        manager="conda",
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        platform=platform,
        url=redact(str(record.url)),
        md5=record.md5.hex(),
        sha256=record.sha256.hex(),
        dependencies=_dependencies(list(record.depends)),
    )


async def _solve(req: CondaRequest, gateway: Gateway) -> list[Any]:
    from rattler import Channel, solve

    return await solve(
        sources=[Channel(ref.url) for ref in req.channels],
        specs=[rattler_spec(s, req.channels) for s in req.specs],
        gateway=gateway,
        platforms=[req.platform, "noarch"],
        virtual_packages=_virtual_packages(req.virtual_packages),
        timeout=SOLVE_TIMEOUT,
        # rattler *replaces* the tzinfo instead of converting: hand it UTC.
        exclude_newer=req.exclude_newer.astimezone(UTC) if req.exclude_newer else None,
        # Records without a timestamp cannot be dated; keep them rather than hide them.
        timestamp_policy="allow-missing",
        channel_relations="disabled",  # solve exactly the channels the catalog names
    )


def solve_conda(req: CondaRequest, *, gateway: Gateway | None = None) -> list[LockedPackage]:
    """Solve ``req``; the packages sorted by name. Raises :class:`SolveError` when it can't."""
    gateway = gateway or make_gateway()
    try:
        records = run_rattler(_solve(req, gateway))
    except SolveError:
        raise
    except explained_errors() as exc:
        raise explain(exc, req, gateway) from None
    for record in records:
        if channel_of(str(record.url), req.channels) is None:
            # Strict priority plus our own channel list make this impossible; a lock must
            # never name a channel the catalog does not know, so check rather than trust.
            raise SolveError(
                f"{record.file_name} came from {redact(str(record.url))}, not a catalog channel",
                rule="unknown-channel",
            )
    return sorted((to_locked(r, req.platform) for r in records), key=lambda p: p.name)


# -- errors -------------------------------------------------------------------------------


def channel_errors() -> tuple[type[Exception], ...]:
    """rattler's errors for channels it could not read: unreachable, no repodata, bad URL."""
    from rattler import exceptions as rx

    return (
        rx.GatewayError,
        rx.FetchRepoDataError,
        rx.InvalidChannelError,
        rx.InvalidUrlError,
        rx.CacheDirError,
        rx.IoError,
        rx.AuthenticationStorageError,
        rx.ConvertSubdirError,
    )


def spec_errors() -> tuple[type[Exception], ...]:
    """rattler's errors for a requirement it cannot parse."""
    from rattler import exceptions as rx

    return (
        rx.InvalidMatchSpecError,
        rx.InvalidPackageNameError,
        rx.InvalidVersionError,
        rx.InvalidVersionSpecError,
        rx.PackageNameMatcherParseError,
    )


def explained_errors() -> tuple[type[Exception], ...]:
    """Every rattler error :func:`explain` turns into a :class:`SolveError`. Anything else
    a solve raises is a bug (in envctl or rattler) and propagates with its traceback."""
    from rattler import exceptions as rx

    return (rx.SolverError, *channel_errors(), *spec_errors())


def channel_names(req: CondaRequest, gateway: Gateway) -> list[str]:
    """Every package name the request's channels offer for its platform (for suggestions)."""
    from rattler import Channel

    try:
        names = run_rattler(
            gateway.names([Channel(r.url) for r in req.channels], [req.platform, "noarch"])
        )
    except channel_errors():
        return []
    return sorted({n.normalized for n in names})


@dataclass(frozen=True)
class Versions:
    """The versions of one package the request's channels have for its platform."""

    usable: tuple[str, ...]  # published before exclude_newer (or undated), oldest first
    newer: tuple[str, ...]  # published after exclude_newer: hidden from this solve

    def __bool__(self) -> bool:
        return bool(self.usable or self.newer)


def package_versions(req: CondaRequest, gateway: Gateway, name: str) -> Versions | None:
    """What the channels hold of ``name`` (None when they cannot be asked)."""
    from rattler import Channel, Version

    try:
        found = run_rattler(
            gateway.query(
                [Channel(r.url) for r in req.channels],
                [req.platform, "noarch"],
                [name],
                recursive=False,
            )
        )
    except (*channel_errors(), *spec_errors()):
        return None
    cutoff = req.exclude_newer.astimezone(UTC) if req.exclude_newer else None
    usable: dict[str, Any] = {}
    newer: dict[str, Any] = {}
    for records in found:
        for record in records:
            version = str(record.version)
            stamp = record.timestamp
            hidden = cutoff is not None and stamp is not None and stamp > cutoff
            (newer if hidden else usable)[version] = record.version
    newer = {v: k for v, k in newer.items() if v not in usable}

    def ordered(versions: dict[str, Any]) -> tuple[str, ...]:
        return tuple(sorted(versions, key=lambda v: Version(v)))

    return Versions(ordered(usable), ordered(newer))


def _listing(versions: Sequence[str], limit: int = 6) -> str:
    shown = list(versions[-limit:])
    return ("..., " if len(versions) > limit else "") + ", ".join(shown)


def suggest(name: str, candidates: Sequence[str]) -> list[str]:
    """The closest package names (difflib), best first."""
    return difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)


def compact(text: str, *, max_lines: int = 8) -> str:
    """rattler's explanation tree as one line: box drawing gone, lines joined."""
    text = text.strip()
    prefix = "Cannot solve the request because of:"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    lines = [_TREE_PREFIX.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return " ".join(lines).replace(": ", ": ", 1).rstrip(".")


def _requested_names(req: CondaRequest) -> dict[str, str]:
    out = {}
    for spec in req.specs:
        text = spec.split("::", 1)[-1]
        name = re.split(r"[\s=<>!~\[]", text, maxsplit=1)[0]
        out[name] = spec
    return out


def _cutoff_text(req: CondaRequest) -> str:
    assert req.exclude_newer is not None
    return req.exclude_newer.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def explain(exc: Exception, req: CondaRequest, gateway: Gateway) -> SolveError:
    """Turn a rattler refusal into a short :class:`SolveError` that says what to change.

    Only the errors of :func:`explained_errors` are explained; any other is re-raised.
    """
    from rattler import exceptions as rx

    message = str(exc)
    if isinstance(exc, rx.SolverError):
        return _explain_solver(message, req, gateway)
    if isinstance(exc, spec_errors()):
        return SolveError(
            f"invalid conda requirement: {message}",
            rule="invalid-requirement",
            fix="write it like 'numpy >=1.26' or 'python=3.11'",
        )
    if isinstance(exc, channel_errors()):
        public = ", ".join(f"{r.name}={r.public_url}" for r in req.channels)
        return SolveError(
            f"could not read the channels for {req.platform} ({public}): {_scrub(message, req)}",
            rule="channel-unreachable",
            fix="check the channel URLs in catalog.yaml and that the channels are reachable",
        )
    raise exc


def _explain_solver(message: str, req: CondaRequest, gateway: Gateway) -> SolveError:
    where = req.platform
    if _CANCELLED in message:
        minutes = int(SOLVE_TIMEOUT.total_seconds() // 60)
        return SolveError(
            f"the conda solve for {where} did not finish within {minutes} minutes",
            rule="solve-timeout",
            fix="pin the versions of the largest packages (or drop some) so the solver has "
            "fewer candidates, then resolve again",
        )
    requested = _requested_names(req)
    missing = [(m.group(1), (m.group(2) or "").strip()) for m in _NO_CANDIDATES.finditer(message)]
    for name, constraint in missing:
        if name not in requested or name.startswith("__"):
            continue
        versions = package_versions(req, gateway, name)
        if versions is None:
            continue  # the channels cannot be asked: the general explanation below
        if not versions:
            close = suggest(name, channel_names(req, gateway))
            channels = ", ".join(r.name for r in req.channels)
            return SolveError(
                f"no package named {name!r} in channel(s) {channels} for {where}",
                rule="unknown-package",
                fix=f"did you mean {', '.join(close)}?"
                if close
                else "check the spelling, or add the channel that has it",
            )
        return _no_matching_version(name, constraint or requested[name], versions, req)
    for m in _EXCLUDED.finditer(message):
        name = m.group(1)
        if name in requested:
            versions = package_versions(req, gateway, name)
            constraint = _constraint_of(message, name) or requested[name]
            return _no_matching_version(name, constraint, versions, req, hidden=True)
    needed = [m for m in _MISSING_DEP.findall(message) if m.startswith("__")]
    needed += [name for name, _ in missing if name.startswith("__")]
    if needed:
        virtual = needed[0]
        have = ", ".join(f"{k}={v}" for k, v in sorted(req.virtual_packages.items()))
        provided = req.virtual_packages.get(virtual)
        what = (
            f"{where} declares {virtual}={provided}"
            if provided
            else f"{where} does not declare {virtual}"
        )
        return SolveError(
            f"cannot solve for {where}: {compact(message)} ({what}; virtual packages: "
            f"{have or 'none'})",
            rule="unsatisfiable",
            fix=f"declare it for this platform, e.g. 'virtual_packages: {{{req.platform}: "
            f'{{{virtual}: "<version>"}}}}\' in the tag or catalog.yaml, '
            "or ask for a build that does not need it",
        )
    # rattler says "tinynum >=2.0, for which no candidates were found" when the
    # candidates exist but the request's own "tinynum <2" rules them out: say so.
    asked = [
        requested[name]
        for name in dict.fromkeys(_MISSING_DEP.findall(message))
        if name in requested
    ]
    note = f" (the request asks for {', '.join(asked)})" if asked else ""
    fix = "relax or remove one of the conflicting requirements"
    if _EXCLUDED.search(message) and req.exclude_newer is not None:
        fix += (
            f"; packages published after exclude_newer ({_cutoff_text(req)}) are not used: "
            "a tag resolves with what existed when it was added"
        )
    return SolveError(
        f"cannot solve for {where}: {compact(message)}{note}",
        rule="unsatisfiable",
        fix=fix,
    )


def _constraint_of(message: str, name: str) -> str | None:
    """``>=2`` from "tinynum >=2 cannot be installed because there are no viable options"."""
    pattern = (
        rf"(?<![\w.\-]){re.escape(name)} ([^\n]*?) cannot be installed because there are no "
        "viable options"
    )
    m = re.search(pattern, message)
    return (m.group(1).strip() or None) if m else None


def _no_matching_version(
    name: str, constraint: str, versions: Versions | None, req: CondaRequest, *,
    hidden: bool = False,
) -> SolveError:
    """No version of a package that exists matches the request (perhaps before the cut-off)."""
    usable = versions.usable if versions else ()
    newer = versions.newer if versions else ()
    cutoff = _cutoff_text(req) if req.exclude_newer is not None else None
    available = f"available: {_listing(usable)}" if usable else "none available"
    if hidden and cutoff:
        if newer:
            available += f"; published later: {_listing(newer)}"
        message = (
            f"no version of {name} matching {constraint} was published before exclude_newer "
            f"{cutoff} ({available})"
        )
    else:
        if newer and cutoff:
            available += f"; published after exclude_newer {cutoff}: {_listing(newer)}"
        message = f"no version of {name} matches {constraint} ({available})"
    fixes = [f"relax the pin to one of the available versions of {name}"] if usable else []
    if hidden and cutoff:
        fixes.append(
            "packages published after exclude_newer are not used (a tag resolves with what "
            "existed when it was added): for a newer one, add a new tag"
        )
    if not fixes:
        fixes.append("relax the pin, or add the channel that has a matching version")
    return SolveError(message, rule="unsatisfiable", fix="; ".join(fixes))


def _scrub(message: str, req: CondaRequest) -> str:
    """Never echo a credential: replace every expanded channel URL by its public form."""
    for ref in req.channels:
        if ref.url != ref.public_url:
            message = message.replace(ref.url, ref.public_url)
    return compact(message, max_lines=3)
