"""Offline OSV advisories: load a file, decide whether a package version is affected.

The OSV schema (https://ossf.github.io/osv-schema/) is what osv.dev, GitHub and PyPA
publish. A database is a JSON file (one advisory, a list of them, an osv.dev API answer
``{"vulns": [...]}`` or ``{"results": [{"vulns": [...]}]}``), a folder of such files,
or a ``.zip`` of them (osv.dev's per-ecosystem ``all.zip`` export).

Matching, per ``affected[]`` entry:

- package: ecosystem ``PyPI`` (names compared after PEP 503 normalisation) or a conda
  ecosystem: ``conda``, ``conda-forge``, or ``conda:<channel>`` (then the channel must
  match too); or ``package.purl`` ``pkg:pypi/...`` / ``pkg:conda/...``;
- version: listed in ``versions``, or inside a ``ranges`` entry of type ``ECOSYSTEM``
  (PEP 440 for PyPI, conda's ordering via rattler for conda) or ``SEMVER`` (semver 2.0
  precedence), evaluated with the spec's ``introduced`` / ``fixed`` /
  ``last_affected`` / ``limit`` algorithm. ``GIT`` ranges need the repository and are
  ignored. Withdrawn advisories are skipped.

Severity: ``database_specific.severity`` (of the affected entry, else of the advisory:
GitHub's ``LOW``/``MODERATE``/``HIGH``/``CRITICAL``), else the CVSS v3 base score
computed from the ``severity`` vector (v2 and v4 vectors are reported, not scored).
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.errors import EnvctlError

LEVELS = ("critical", "high", "medium", "low", "none", "unknown")


class AdvisoryDbError(EnvctlError):
    default_rule = "invalid-advisory-db"


@dataclass(frozen=True)
class Severity:
    level: str  # one of LEVELS
    score: float | None = None
    vector: str | None = None

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    aliases: tuple[str, ...]
    raw: dict[str, Any]

    @property
    def withdrawn(self) -> bool:
        return bool(self.raw.get("withdrawn"))

    def affected(self) -> list[dict[str, Any]]:
        return [a for a in self.raw.get("affected") or [] if isinstance(a, dict)]


# -- loading ------------------------------------------------------------------------------


def _advisories(data: Any, where: str) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _advisories(item, where)
    elif isinstance(data, dict) and "id" in data:
        yield data
    elif isinstance(data, dict) and isinstance(data.get("vulns"), list):
        yield from _advisories(data["vulns"], where)
    elif isinstance(data, dict) and isinstance(data.get("results"), list):
        yield from _advisories(data["results"], where)
    elif isinstance(data, dict) and not data:
        return  # osv.dev answers {} for "no vulnerabilities"
    else:
        raise AdvisoryDbError(f"{where} is not an OSV advisory (no 'id')", file=where,
                              fix="use OSV JSON: an advisory, a list, or an osv.dev export")


def _parse(text: bytes, where: str) -> list[Advisory]:
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdvisoryDbError(f"{where} is not JSON: {exc}", file=where) from None
    return [Advisory(str(a["id"]), str(a.get("summary") or a.get("details") or "")[:200],
                     tuple(str(x) for x in a.get("aliases") or ()), a)
            for a in _advisories(data, where)]


def load_db(path: str | Path) -> list[Advisory]:
    """Every advisory in a JSON file, a folder of them, or a zip of them."""
    path = Path(path)
    if not path.exists():
        raise AdvisoryDbError(f"advisory database {path} does not exist", file=str(path),
                              fix="download one (e.g. osv.dev's PyPI/all.zip) and pass --db")
    if path.is_dir():
        out: list[Advisory] = []
        for member in sorted(path.rglob("*.json")):
            out.extend(_parse(member.read_bytes(), str(member)))
        return out
    if zipfile.is_zipfile(path):
        out = []
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(".json"):
                    out.extend(_parse(archive.read(name), f"{path}:{name}"))
        return out
    return _parse(path.read_bytes(), str(path))


# -- versions -----------------------------------------------------------------------------

_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)


def semver_key(text: str) -> tuple[Any, ...] | None:
    """Semver 2.0 precedence: a release sorts after its pre-releases; build metadata ignored."""
    match = _SEMVER.fullmatch(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, ids)


def _pypi_key(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def _conda_key(text: str) -> Any:
    from rattler import Version

    try:
        return Version(text)
    except Exception:  # rattler's InvalidVersionError
        return None


def comparator(manager: str, range_type: str) -> Callable[[str], Any] | None:
    if range_type == "SEMVER":
        return semver_key
    if range_type == "ECOSYSTEM":
        return _pypi_key if manager == "pip" else _conda_key
    return None  # GIT: needs the repository


def in_range(version: str, events: list[dict[str, Any]], key: Callable[[str], Any]) -> bool:
    """The OSV spec's evaluation of one range's events for ``version``."""
    mine = key(version)
    if mine is None:
        return False
    parsed: list[tuple[int, Any, str]] = []
    for index, event in enumerate(events):
        for kind in ("introduced", "fixed", "last_affected", "limit"):
            if kind not in event:
                continue
            value = str(event[kind])
            if kind == "introduced" and value == "0":
                parsed.append((index, None, kind))  # before every version
                continue
            bound = key(value)
            if bound is None:
                return False  # a bound we cannot read: no claim either way
            parsed.append((index, bound, kind))
    parsed = _sort_events(parsed)
    affected = False
    for _, bound, kind in parsed:
        if kind == "introduced" and (bound is None or mine >= bound):
            affected = True
        elif (kind in ("fixed", "limit") and mine >= bound) or (
            kind == "last_affected" and mine > bound
        ):
            affected = False
    return affected


def _sort_events(events: list[tuple[int, Any, str]]) -> list[tuple[int, Any, str]]:
    """Stable sort by version, ``introduced: 0`` first; equal versions keep the file's
    order. Only ``<`` is used: rattler's versions support comparison, not sort keys."""
    zero = [e for e in events if e[1] is None]
    rest = [e for e in events if e[1] is not None]
    ordered: list[tuple[int, Any, str]] = []
    for event in rest:  # insertion sort: few events, keeps equal versions in file order
        at = len(ordered)
        while at > 0 and event[1] < ordered[at - 1][1]:
            at -= 1
        ordered.insert(at, event)
    return zero + ordered


# -- severity -----------------------------------------------------------------------------

_V3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def _roundup(value: float) -> float:
    """CVSS 3.1's Roundup: the smallest one-decimal number >= value, without float noise."""
    whole = round(value * 100000)
    return whole / 100000.0 if whole % 10000 == 0 else (math.floor(whole / 10000) + 1) / 10.0


def cvss3_score(vector: str) -> float | None:
    """The CVSS v3.0/3.1 base score of ``vector`` (``CVSS:3.1/AV:N/AC:L/...``), or None."""
    if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
        return None
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        changed = metrics["S"] == "C"
        pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}
        av, ac = _V3["AV"][metrics["AV"]], _V3["AC"][metrics["AC"]]
        ui, priv = _V3["UI"][metrics["UI"]], pr[metrics["PR"]]
        c, i, a = (_V3["C"][metrics[m]] for m in ("C", "I", "A"))
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    exploitability = 8.22 * av * ac * priv * ui
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return _roundup(min(total, 10.0))


def level_of_score(score: float) -> str:
    if score == 0:
        return "none"
    if score < 4:
        return "low"
    if score < 7:
        return "medium"
    return "high" if score < 9 else "critical"


_LABELS = {"critical": "critical", "high": "high", "moderate": "medium", "medium": "medium",
           "low": "low", "none": "none"}


def severity(advisory: Advisory, affected: dict[str, Any]) -> Severity:
    vector = None
    score = None
    for entry in [*(affected.get("severity") or []), *(advisory.raw.get("severity") or [])]:
        if not isinstance(entry, dict):
            continue
        text = str(entry.get("score", ""))
        vector = vector or text or None
        try:
            score = float(text)  # some databases give the number itself
        except ValueError:
            score = cvss3_score(text) if str(entry.get("type")) == "CVSS_V3" else None
        if score is not None:
            vector = text
            break
    for where in (affected, advisory.raw):
        for block in ("database_specific", "ecosystem_specific"):
            label = (where.get(block) or {}).get("severity")
            if isinstance(label, str) and label.lower() in _LABELS:
                return Severity(_LABELS[label.lower()], score, vector)
    if score is not None:
        return Severity(level_of_score(score), score, vector)
    return Severity("unknown", None, vector)
