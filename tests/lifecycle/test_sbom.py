"""SBOMs of a resolved tag: CycloneDX and SPDX documents their own libraries validate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envctl.catalog import Catalog, WorkTreeSource
from envctl.cli.main import app
from envctl.lifecycle.sbom import make_sbom
from envctl.resolve.lockfile import read_lock
from envctl.store.base import Store

pytestmark = pytest.mark.slow  # one real solve per worker, and real package files

CREATED = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)


def catalog(app_: Any) -> Catalog:
    return Catalog(WorkTreeSource(app_.root))


def lock_of(app_: Any) -> Any:
    return read_lock((app_.root / "locks/team/app/v1.conda-lock.yml").read_bytes())


def test_cyclonedx_validates_and_names_every_package(resolved_app: Any,
                                                     resolved_store: Store) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    sbom = make_sbom(catalog(resolved_app), "team/app:stable", format="cyclonedx-json",
                     platform="linux-64", store=resolved_store, created=CREATED)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.text) is None
    data = json.loads(sbom.text)
    assert data["metadata"]["component"]["name"] == "team/app"
    assert data["metadata"]["component"]["version"] == "v1"
    assert data["metadata"]["timestamp"].startswith("2025-02-03T04:05:06")
    packages = lock_of(resolved_app).for_platform("linux-64")
    by_name = {c["name"]: c for c in data["components"]}
    assert sorted(by_name) == sorted(p.name for p in packages)
    for package in packages:
        component = by_name[package.name]
        hashes = {h["alg"]: h["content"] for h in component["hashes"]}
        assert hashes["SHA-256"] == package.sha256
        if package.manager == "conda":
            assert hashes["MD5"] == package.md5
    python = by_name["python"]["purl"]
    assert python.startswith("pkg:conda/python@3.11.99?build=")
    assert "subdir=linux-64" in python and "type=tar.bz2" in python
    assert by_name["itsdangerous"]["purl"] == "pkg:pypi/itsdangerous@2.1.2"
    # Licenses, as each package file in the store declares them.
    assert by_name["tinynum"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert by_name["python"]["licenses"] == [{"license": {"id": "PSF-2.0"}}]
    assert by_name["itsdangerous"]["licenses"]  # from the wheel's METADATA
    assert "licenses" not in by_name["idna"]  # its metadata says null: nothing is guessed
    assert sbom.licensed == sum(1 for c in data["components"] if "licenses" in c)
    # The dependency graph: the environment holds everything; tinynum needs python.
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}
    root = data["metadata"]["component"]["bom-ref"]
    assert deps[root] == {c["bom-ref"] for c in data["components"]}
    assert by_name["python"]["bom-ref"] in deps[by_name["tinynum"]["bom-ref"]]
    # Same inputs, same bytes.
    again = make_sbom(catalog(resolved_app), "team/app:v1", format="cyclonedx-json",
                      platform="linux-64", store=resolved_store, created=CREATED)
    assert again.text == sbom.text


def test_spdx_validates(resolved_app: Any, resolved_store: Store, tmp_path: Path) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    sbom = make_sbom(catalog(resolved_app), "team/app:v1", format="spdx-json",
                     platform="osx-arm64", store=resolved_store, created=CREATED)
    path = tmp_path / "app.spdx.json"
    path.write_text(sbom.text)
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    data = json.loads(sbom.text)
    assert data["spdxVersion"] == "SPDX-2.3"
    packages = {p["name"]: p for p in data["packages"]}
    assert len(packages) == 1 + len(lock_of(resolved_app).for_platform("osx-arm64"))
    assert packages["tinynum"]["licenseDeclared"] == "MIT"
    refs = packages["itsdangerous"]["externalRefs"]
    assert refs == [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                     "referenceLocator": "pkg:pypi/itsdangerous@2.1.2"}]
    assert any(r["relationshipType"] == "DESCRIBES" for r in data["relationships"])


def test_without_a_store_there_are_no_licenses(resolved_app: Any) -> None:
    sbom = make_sbom(catalog(resolved_app), "team/app:v1", format="cyclonedx-json",
                     platform="linux-64", store=None, created=CREATED)
    assert sbom.licensed == 0
    assert all("licenses" not in c for c in json.loads(sbom.text)["components"])


def test_sbom_cli(resolved_app: Any, resolved_store: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    url = resolved_store.url if resolved_store.url.startswith("s3://") \
        else resolved_store.describe("")
    out = tmp_path / "app.cdx.json"
    result = runner.invoke(app, ["--catalog", str(resolved_app.root), "sbom", "team/app:v1",
                                 "--platform", "linux-64", "--format", "cyclonedx-json",
                                 "-o", str(out), "--store", url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote cyclonedx-json SBOM of team/app:v1 (linux-64, ")
    assert json.loads(out.read_text())["bomFormat"] == "CycloneDX"
    bad = runner.invoke(app, ["--catalog", str(resolved_app.root), "sbom", "team/app:v1",
                              "--format", "xml"])
    assert bad.exit_code == 1 and "unknown --format 'xml'" in bad.output
