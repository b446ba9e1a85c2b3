"""``extends:``: pin the base's lock exactly, and explain a conflict with it.

A tag that extends a base installs every package of the base's lock unchanged
(name, version, build and channel for conda; name and version for PyPI) plus its
own additions. When an addition cannot live with the pins, the solver's dump is
not the answer a person needs: :func:`diagnose` re-solves to find which added
requirement conflicts with which pinned package, and suggests a new base tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envctl.errors import SolveError
from envctl.resolve.channels import ChannelRef, channel_of
from envctl.resolve.lockfile import LockedPackage

#: Solves a list of conda specs for the platform at hand; raises SolveError.
SolveFn = Callable[[Sequence[str]], list[LockedPackage]]


@dataclass(frozen=True)
class BasePins:
    alias: str
    conda: tuple[LockedPackage, ...]
    pypi: tuple[LockedPackage, ...]
    conda_specs: tuple[str, ...]
    pypi_pins: tuple[str, ...]


def conda_pin(package: LockedPackage, channels: Sequence[ChannelRef], base: str) -> str:
    """``<logical>::name ==version build``: this exact package from this exact channel."""
    ref = channel_of(package.url, channels)
    if ref is None:
        raise SolveError(
            f"the base {base} installs {package.filename} from a channel this tag does not use",
            rule="extends-channel",
            fix="use the base's channels (leave 'channels:' out to inherit them)",
        )
    return f"{ref.name}::{package.name} =={package.version} {package.build}"


def base_pins(
    base: str, packages: Sequence[LockedPackage], channels: Sequence[ChannelRef]
) -> BasePins:
    conda = tuple(p for p in packages if p.manager == "conda")
    pypi = tuple(p for p in packages if p.manager == "pip")
    return BasePins(
        alias=base,
        conda=conda,
        pypi=pypi,
        conda_specs=tuple(conda_pin(p, channels, base) for p in conda),
        pypi_pins=tuple(f"{p.name}=={p.version}" for p in pypi),
    )


def next_tag(tag: str, existing: Sequence[str]) -> str:
    """A fresh tag to suggest after ``tag``: ``v3`` -> ``v4`` (skipping taken ones)."""
    match = re.fullmatch(r"(.*?)(\d+)", tag)
    stem, number = (match.group(1), int(match.group(2))) if match else (f"{tag}-", 1)
    candidate = f"{stem}{number + 1}"
    while candidate in existing:
        number += 1
        candidate = f"{stem}{number + 1}"
    return candidate


def _solves(solve: SolveFn, specs: Sequence[str]) -> bool:
    try:
        solve(specs)
    except SolveError:
        return False
    return True


def _name_of(requirement: str) -> str:
    text = requirement.split("::", 1)[-1]
    return re.split(r"[\s=<>!~\[]", text, maxsplit=1)[0]


def minimal_conflict(req: str, pins: BasePins, solve: SolveFn) -> list[LockedPackage]:
    """A smallest set of pinned packages that ``req`` cannot be installed with.

    Deletion filter: try dropping each pin; keep it only if the rest then solves with
    ``req``. Pins of the package ``req`` names are tried last, so when several minimal
    sets exist the one naming that package is reported ("tinynum >=2" conflicts with
    the pinned tinynum, not with a package that needs the old tinynum).
    """
    name = _name_of(req)
    order = sorted(range(len(pins.conda)), key=lambda i: pins.conda[i].name == name)
    kept = set(range(len(pins.conda)))
    for index in order:
        trial = kept - {index}
        if not _solves(solve, [*(pins.conda_specs[i] for i in sorted(trial)), req]):
            kept = trial  # still unsolvable without it: not part of the conflict
    return [pins.conda[i] for i in sorted(kept)]


def diagnose(
    *,
    alias: str,
    platform: str,
    added: Sequence[str],
    pins: BasePins,
    solve: SolveFn,
    new_base: str,
    original: SolveError,
) -> SolveError:
    """Which added requirement conflicts with which pinned package, as one error.

    Each addition is tried alone with all pins; those that fail are the culprits, and
    :func:`minimal_conflict` names the pins each cannot live with. A few small solves,
    on the error path only.
    """
    culprits = [req for req in added if not _solves(solve, [*pins.conda_specs, req])]
    if not culprits:
        return SolveError(
            f"{alias}: its additions together conflict with the packages pinned by its base "
            f"{pins.alias} on {platform}: {original.message}",
            rule="extends-conflict",
            fix=f"add a new base tag with these additions (e.g. {new_base}) and extend that",
        )
    parts = []
    for req in culprits:
        if not _solves(solve, [req]):
            # Not a conflict with the base: the addition cannot be installed at all.
            return SolveError(
                f"{alias}: {req!r} cannot be installed on {platform} even without its base: "
                f"{original.message}",
                rule="unsatisfiable",
                fix="relax or remove that requirement",
            )
        blocking = minimal_conflict(req, pins, solve)
        pinned_text = ", ".join(f"{p.name} {p.version} ({p.build})" for p in blocking)
        parts.append(f"{req!r} conflicts with {pinned_text} pinned by the base")
    added_text = ", ".join(repr(r) for r in culprits)
    return SolveError(
        f"{alias} extends {pins.alias}, whose lock is pinned on {platform}: " + "; ".join(parts),
        rule="extends-conflict",
        fix=(
            f"the base never changes: add a new base tag (e.g. {new_base}) whose dependencies "
            f"include {added_text}, and extend that; or relax {added_text}"
        ),
    )
