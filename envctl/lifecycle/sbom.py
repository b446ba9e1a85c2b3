"""``envctl sbom NAME:TAG``: a software bill of materials from a tag's lock, for one platform.

Two formats, both built with their reference libraries rather than by hand:

- ``cyclonedx-json`` (CycloneDX 1.6) with cyclonedx-python-lib: the environment is the
  metadata component (type ``platform``: a runtime environment other software runs
  in); every locked package a ``library`` component with its purl (``pkg:conda/...``
  with build, channel, subdir and type; ``pkg:pypi/...``), SHA-256 (and MD5 for conda,
  which conda-lock records), declared license, and a dependency graph from the lock.
- ``spdx-json`` (SPDX 2.3) with spdx-tools, which validates the document before
  writing it. spdx-tools installs from PyPI without native code, so envctl uses it
  instead of writing SPDX JSON by hand against the schema. A declared license that is
  not an SPDX expression (``BSD``) is kept as a license comment, with
  ``NOASSERTION`` as the declared license.

Licenses are what the package files in the store say (:mod:`envctl.lifecycle.pkgmeta`);
without a store, or for a package missing from it, there is none. Both libraries are
imported only when an SBOM is made.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from envctl.errors import EnvctlError, NotFoundError
from envctl.lifecycle.pkgmeta import PackageFacts, gather
from envctl.names import Alias, parse_alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.store.base import Store

Format = Literal["cyclonedx-json", "spdx-json"]
FORMATS: tuple[str, ...] = ("cyclonedx-json", "spdx-json")


@dataclass(frozen=True)
class Sbom:
    text: str
    format: Format
    alias: str  # the concrete tag
    platform: str
    env_id: str
    packages: int
    licensed: int  # packages with a declared license

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "platform": self.platform, "id": self.env_id,
                "format": self.format, "packages": self.packages, "licensed": self.licensed}


def _version() -> str:
    from envctl import __version__

    return __version__


def _pick_platform(platforms: Sequence[str], asked: str | None, alias: Alias) -> str:
    if asked is not None:
        if asked not in platforms:
            raise NotFoundError(f"{alias} is not resolved for {asked}", tag=alias.tag,
                                rule="unknown-platform",
                                fix=f"use --platform with one of: {', '.join(platforms)}")
        return asked
    from envctl.materialize import host_platform

    host = host_platform()
    return host if host in platforms else sorted(platforms)[0]


def make_sbom(
    catalog: Catalog,
    ref: str,
    *,
    format: Format,
    created: datetime,
    platform: str | None = None,
    store: Store | None = None,
) -> Sbom:
    """The SBOM of ``ref`` (a locked tag, or a pointer to one) on ``platform``.

    ``created`` is the document's timestamp (passed in, so the output is reproducible).
    """
    from envctl.resolve.lockfile import read_lock

    if format not in FORMATS:
        raise EnvctlError(f"unknown SBOM format {format!r}", rule="invalid-option",
                          fix=f"use one of: {', '.join(FORMATS)}")
    alias = catalog.resolve(parse_alias(ref))
    meta = catalog.meta(alias)
    data = catalog.lock_bytes(alias)
    if meta is None or data is None:
        raise NotFoundError(f"{alias} is not locked yet, so it has no bill of materials",
                            file=str(alias.meta_path), tag=alias.tag, rule="pending",
                            fix="wait for CI to lock it, or name a locked tag")
    chosen = _pick_platform(list(meta.platforms), platform, alias)
    lock = read_lock(data, file=str(alias.lock_path))
    facts = gather(lock.for_platform(chosen), store=store)
    ids = meta.platforms[chosen]
    env_id = f"{ids.req_id}:{ids.full_id}"
    # Stable per environment and time: regenerating the same SBOM gives the same serial.
    serial = uuid.uuid5(uuid.NAMESPACE_URL,
                        f"envctl:{alias}:{chosen}:{env_id}:{created.isoformat()}")
    build = _cyclonedx if format == "cyclonedx-json" else _spdx
    text = build(alias, chosen, env_id, facts, created, serial)
    return Sbom(text, format, str(alias), chosen, env_id, len(facts),
                sum(1 for f in facts if f.licenses))


# -- CycloneDX ----------------------------------------------------------------------------


def _cyclonedx(alias: Alias, platform: str, env_id: str, facts: list[PackageFacts],
               created: datetime, serial: uuid.UUID) -> str:
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib < 11.6
        from cyclonedx.factory.license import LicenseFactory  # type: ignore[no-redef]

    licenses = LicenseFactory()
    root = Component(
        type=ComponentType.PLATFORM,
        name=str(alias.name),
        version=alias.tag,
        bom_ref=f"envctl:{alias}@{platform}",
        description=f"conda/PyPI environment {alias} for {platform}, id {env_id}",
        properties=[Property(name="envctl:id", value=env_id),
                    Property(name="envctl:platform", value=platform)],
    )
    tools = Component(type=ComponentType.APPLICATION, name="envctl", version=_version())
    bom = Bom(serial_number=serial, metadata=BomMetaData(
        component=root, timestamp=created, tools=ToolRepository(components=[tools])))
    components: dict[str, Component] = {}
    for fact in facts:
        package = fact.package
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=package.sha256 or "")]
        if package.md5:
            hashes.append(HashType(alg=HashAlgorithm.MD5, content=package.md5))
        refs = []
        if package.url.startswith(("http://", "https://")):
            from envctl.resolve.channels import redact

            refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                          url=XsUri(redact(package.url))))
        if fact.homepage and fact.homepage.startswith(("http://", "https://")):
            refs.append(ExternalReference(type=ExternalReferenceType.WEBSITE,
                                          url=XsUri(fact.homepage)))
        props = [Property(name="envctl:manager", value=package.manager),
                 Property(name="envctl:filename", value=package.filename)]
        component = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            bom_ref=fact.purl,
            purl=PackageURL.from_string(fact.purl),
            hashes=hashes,
            # One declared text: an SPDX id, an expression, or else a name; several
            # (wheel classifiers): names.
            licenses=[licenses.make_from_string(fact.licenses[0])] if len(fact.licenses) == 1
            else [licenses.make_with_name(text) for text in fact.licenses],
            description=fact.summary,
            external_references=refs,
            properties=props,
        )
        components[fact.purl] = component
        bom.components.add(component)
    bom.register_dependency(root, list(components.values()))
    for fact in facts:
        deps = [components[p] for p in fact.dependencies if p in components]
        bom.register_dependency(components[fact.purl], deps)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    return text + "\n"


# -- SPDX -------------------------------------------------------------------------------


def _spdx_id(text: str) -> str:
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _spdx(alias: Alias, platform: str, env_id: str, facts: list[PackageFacts],
          created: datetime, serial: uuid.UUID) -> str:
    from spdx_tools.common.spdx_licensing import spdx_licensing
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        PackagePurpose,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.validation.uri_validators import validate_download_location
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    from envctl.resolve.channels import redact

    root_id = _spdx_id(f"Environment-{alias.name}-{alias.tag}-{platform}")
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{alias} ({platform})",
        document_namespace=f"https://spdx.org/spdxdocs/envctl-{_spdx_id(str(alias))[8:]}-"
        f"{platform}-{serial}",
        creators=[Actor(ActorType.TOOL, f"envctl-{_version()}")],
        created=created.replace(microsecond=0, tzinfo=None),  # SPDX times are UTC seconds
        document_comment=f"envctl environment id {env_id}",
    )
    root = Package(
        spdx_id=root_id, name=str(alias.name), version=alias.tag,
        download_location=SpdxNoAssertion(), files_analyzed=False,
        primary_package_purpose=PackagePurpose.OTHER,
        comment=f"conda/PyPI environment {alias} for {platform}, id {env_id}",
    )
    packages = [root]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, root_id)]
    ids: dict[str, str] = {}
    for index, fact in enumerate(facts):
        package = fact.package
        spdx_id = _spdx_id(f"Package-{index}-{package.manager}-{package.name}-{package.version}")
        ids[fact.purl] = spdx_id
        checksums = [Checksum(ChecksumAlgorithm.SHA256, package.sha256 or "")]
        if package.md5:
            checksums.append(Checksum(ChecksumAlgorithm.MD5, package.md5))
        declared: Any = SpdxNoAssertion()
        comment = None
        if len(fact.licenses) == 1 and not spdx_licensing.validate(fact.licenses[0]).errors:
            declared = spdx_licensing.parse(fact.licenses[0])
        elif fact.licenses:
            comment = f"declared license (not an SPDX expression): {'; '.join(fact.licenses)}"
        url = redact(package.url)
        # SPDX accepts only some URL shapes (no IP hosts, for one): else NOASSERTION.
        location: Any = url if not validate_download_location(url) else SpdxNoAssertion()
        packages.append(Package(
            spdx_id=spdx_id,
            name=package.name,
            version=package.version,
            file_name=package.filename,
            download_location=location,
            files_analyzed=False,
            checksums=checksums,
            homepage=fact.homepage if fact.homepage and fact.homepage.startswith(
                ("http://", "https://")) else None,
            license_concluded=SpdxNoAssertion(),
            license_declared=declared,
            license_comment=comment,
            copyright_text=SpdxNoAssertion(),
            summary=fact.summary,
            external_references=[ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", fact.purl)],
            primary_package_purpose=PackagePurpose.LIBRARY,
        ))
        relationships.append(Relationship(root_id, RelationshipType.CONTAINS, spdx_id))
    for fact in facts:
        for dep in fact.dependencies:
            if dep in ids:
                relationships.append(
                    Relationship(ids[fact.purl], RelationshipType.DEPENDS_ON, ids[dep]))
    document = Document(creation_info=info, packages=packages, relationships=relationships)
    out = io.StringIO()
    try:
        write_document_to_stream(document, out, validate=True)
    except ValueError as exc:  # spdx-tools lists every validation message
        raise EnvctlError(f"the SPDX document for {alias} does not validate: {exc}",
                          rule="invalid-sbom", fix="report this as a bug in envctl") from None
    # spdx-tools writes compact JSON; re-indent for people and stable diffs.
    return json.dumps(json.loads(out.getvalue()), indent=2) + "\n"
