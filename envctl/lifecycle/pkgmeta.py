"""Facts about each locked package for SBOMs and audits: purl, hashes, and, when the
package file is in the store, its declared license, summary and home page.

Licenses come only from the package's own metadata, never guessed:

- conda (``.conda`` and ``.tar.bz2``): ``info/about.json`` ``license``, else
  ``info/index.json`` ``license``; read with conda-package-streaming (it streams the
  ``info/`` part without unpacking the package);
- wheels: ``License-Expression`` (PEP 639), else a one-line ``License`` field, else the
  ``License ::`` trove classifiers, from ``*.dist-info/METADATA``.

A package missing from the store (or with no license in its metadata) simply has no
license in the SBOM.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from envctl.errors import EnvctlError

if TYPE_CHECKING:
    from envctl.resolve.lockfile import LockedPackage
    from envctl.store.base import Store

WORKERS = 8


@dataclass(frozen=True)
class PackageFacts:
    package: LockedPackage
    purl: str
    licenses: tuple[str, ...] = ()  # one SPDX expression, or license names
    summary: str | None = None
    homepage: str | None = None
    dependencies: tuple[str, ...] = field(default=())  # purls of its locked dependencies

    @property
    def ecosystem_name(self) -> str:
        """The name as its ecosystem compares it (PyPI names are normalised)."""
        return _name_key(self.package.manager, self.package.name)[1]


def channel_of(package: LockedPackage) -> str:
    """The channel URL a conda package came from: its URL without ``/<subdir>/<file>``."""
    from envctl.resolve.channels import redact

    url = redact(package.url)
    return url.rsplit("/", 2)[0] if url.count("/") >= 2 else url


def purl_of(package: LockedPackage) -> str:
    """``pkg:conda/<name>@<version>?build=..&channel=..&subdir=..&type=..`` or
    ``pkg:pypi/<name>@<version>`` (package-url spec)."""
    from packageurl import PackageURL

    if package.manager == "pip":
        from packaging.utils import canonicalize_name

        return PackageURL(type="pypi", name=str(canonicalize_name(package.name)),
                          version=package.version).to_string()
    channel = channel_of(package)
    parts = urlsplit(channel)
    # anaconda.org channels are named by their first path segment (conda-forge); any
    # other channel by its last one; http(s) channels also get their URL.
    segments = [s for s in parts.path.split("/") if s]
    hosted = parts.hostname in ("conda.anaconda.org", "anaconda.org")
    name = segments[0] if hosted and segments else (segments[-1] if segments else "")
    qualifiers: dict[str, str] = {}
    if package.build:
        qualifiers["build"] = package.build
    if name:
        qualifiers["channel"] = name
    if parts.scheme in ("http", "https") and not hosted:
        qualifiers["repository_url"] = channel
    if package.subdir:
        qualifiers["subdir"] = package.subdir
    qualifiers["type"] = "conda" if package.filename.endswith(".conda") else "tar.bz2"
    return PackageURL(type="conda", name=package.name.lower(), version=package.version,
                      qualifiers=qualifiers).to_string()


# -- reading package metadata ---------------------------------------------------------------


def _conda_info(path: Path) -> dict[str, Any]:
    """``index.json`` overlaid with ``about.json`` (what a conda package says about itself)."""
    from conda_package_streaming.package_streaming import stream_conda_info

    wanted: dict[str, dict[str, Any]] = {"info/index.json": {}, "info/about.json": {}}
    with open(path, "rb") as handle:
        for tar, member in stream_conda_info(path.name, handle):
            if member.name in wanted and member.isfile():
                extracted = tar.extractfile(member)
                if extracted is not None:
                    wanted[member.name] = json.loads(extracted.read())
            if all(wanted.values()):
                break
    index, about = wanted["info/index.json"], wanted["info/about.json"]
    # about.json is the richer source; a null there must not hide index.json's value.
    return {**index, **{k: v for k, v in about.items() if v not in (None, "")}}


def _wheel_info(path: Path) -> dict[str, Any]:
    from email.parser import BytesHeaderParser

    with zipfile.ZipFile(path) as wheel:
        name = next((n for n in wheel.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        if name is None:
            return {}
        headers = BytesHeaderParser().parsebytes(wheel.read(name))
    license_text = headers.get("License-Expression")
    if not license_text:
        single = (headers.get("License") or "").strip()
        if single and "\n" not in single and len(single) < 80 and single.upper() != "UNKNOWN":
            license_text = single
    classifiers = [c.rsplit("::", 1)[-1].strip() for c in headers.get_all("Classifier") or []
                   if c.startswith("License ::") and c.count("::") >= 2]
    home = headers.get("Home-page")
    for url in headers.get_all("Project-URL") or []:
        label, _, value = url.partition(",")
        if label.strip().lower() in ("homepage", "home", "source") and not home:
            home = value.strip()
    return {"license": license_text, "license_names": classifiers,
            "summary": headers.get("Summary"), "home": home}


def read_metadata(path: Path) -> dict[str, Any]:
    """``{"license", "license_names", "summary", "home"}`` from a package file; {} if unreadable."""
    try:
        if path.name.endswith(".whl"):
            return _wheel_info(path)
        if path.name.endswith((".conda", ".tar.bz2")):
            info = _conda_info(path)
            return {"license": info.get("license"), "summary": info.get("summary"),
                    "home": info.get("home") or info.get("dev_url")}
    except (OSError, ValueError, KeyError, tarfile.TarError, zipfile.BadZipFile):
        return {}  # a package we cannot read has no metadata to report
    return {}


def _licenses(meta: dict[str, Any]) -> tuple[str, ...]:
    text = meta.get("license")
    if isinstance(text, str) and text.strip():
        return (text.strip(),)
    return tuple(n for n in meta.get("license_names") or () if n)


def _name_key(manager: str, name: str) -> tuple[str, str]:
    """How a lock's dependency names find packages: PyPI names normalised (PEP 503)."""
    if manager == "pip":
        from packaging.utils import canonicalize_name

        return manager, str(canonicalize_name(name))
    return manager, name.lower()


def gather(
    packages: Sequence[LockedPackage], *, store: Store | None, workers: int = WORKERS
) -> list[PackageFacts]:
    """Facts for ``packages`` (one platform's), in lock order."""
    from envctl.store.base import package_key

    purls = {_name_key(p.manager, p.name): purl_of(p) for p in packages}

    def metadata(package: LockedPackage) -> dict[str, Any]:
        if store is None or not package.sha256:
            return {}
        with tempfile.TemporaryDirectory(prefix="envctl-sbom-") as tmp:
            dest = Path(tmp) / package.filename
            try:
                store.get_file(package_key(package.sha256, package.filename), dest)
            except EnvctlError:
                return {}  # not in the store (or corrupt: verify reports that)
            return read_metadata(dest)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(packages)))) as pool:
        metas = list(pool.map(metadata, packages))
    facts = []
    for package, meta in zip(packages, metas, strict=True):
        deps = {purls[k] for k in (_name_key(package.manager, d) for d in
                                   dict(package.dependencies)) if k in purls}
        facts.append(PackageFacts(
            package=package,
            purl=purls[_name_key(package.manager, package.name)],
            licenses=_licenses(meta),
            summary=meta.get("summary") or None,
            homepage=meta.get("home") or None,
            dependencies=tuple(sorted(deps)),
        ))
    return facts
