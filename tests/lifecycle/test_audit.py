"""audit: a resolved tag's packages against the OSV advisories in tests/data/osv/."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envctl.catalog import Catalog, WorkTreeSource
from envctl.cli.main import app
from envctl.lifecycle.audit import audit, match
from envctl.lifecycle.osv import (
    AdvisoryDbError,
    comparator,
    cvss3_score,
    in_range,
    load_db,
    semver_key,
)
from envctl.resolve.lockfile import LockedPackage

DB = Path(__file__).resolve().parents[1] / "data" / "osv" / "advisories.json"


@pytest.mark.slow
def test_audit_finds_the_seeded_advisories(resolved_app: Any) -> None:
    report = audit(Catalog(WorkTreeSource(resolved_app.root)), "team/app:stable", DB)
    assert report.alias == "team/app:v1" and report.advisories == 6
    found = [(f.advisory, f.name, f.version, f.severity.level, f.severity.score, f.platforms)
             for f in report.findings]
    both = ("linux-64", "osx-arm64")
    assert found == [
        ("ENVT-2025-0002", "tinynum", "1.1", "critical", 9.8, both),
        ("GHSA-envt-0001-0001", "itsdangerous", "2.1.2", "medium", None, both),
        ("ENVT-2025-0006", "idna", "3.10", "unknown", None, both),
    ]
    assert report.findings[1].fixed == ("2.2.0",)
    assert report.findings[1].manager == "pip"


@pytest.mark.slow
def test_audit_cli(resolved_app: Any) -> None:
    runner = CliRunner()
    base = ["--catalog", str(resolved_app.root), "audit", "team/app:v1", "--db", str(DB)]
    result = runner.invoke(app, [*base, "--platform", "linux-64"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("CRITICAL 9.8 tinynum 1.1 (conda, linux-64): ENVT-2025-0002 ")
    assert "fixed in 2.2.0" in lines[1]
    assert lines[-1] == "3 affected in 8 packages of team/app:v1 (6 advisories)"
    ignored = runner.invoke(app, [*base, "--json", "--ignore", "ENVT-2025-0002",
                                  "--ignore", "cve-2099-0001", "--ignore", "ENVT-2025-0006"])
    assert ignored.exit_code == 0, ignored.output
    data = json.loads(ignored.stdout)
    assert data["affected"] is False
    assert data["ignored"] == ["ENVT-2025-0002", "ENVT-2025-0006", "GHSA-envt-0001-0001"]


def pip(name: str, version: str) -> LockedPackage:
    return LockedPackage("pip", name, version, "linux-64", f"https://x/{name}.whl", "0" * 64)


def conda(name: str, version: str) -> LockedPackage:
    return LockedPackage("conda", name, version, "linux-64",
                         f"https://conda.anaconda.org/conda-forge/linux-64/{name}.conda",
                         "0" * 64, md5="0" * 32, build="0")


def test_ranges_follow_the_osv_algorithm() -> None:
    key = comparator("pip", "ECOSYSTEM")
    assert key is not None
    events = [{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"},
              {"last_affected": "2.3"}]
    verdicts = {v: in_range(v, events, key) for v in
                ("0.9", "1.0", "1.4.9", "1.5", "1.9", "2.0", "2.3", "2.3.1")}
    assert verdicts == {"0.9": False, "1.0": True, "1.4.9": True, "1.5": False, "1.9": False,
                        "2.0": True, "2.3": True, "2.3.1": False}
    conda_key = comparator("conda", "ECOSYSTEM")
    assert conda_key is not None
    assert in_range("1.10", [{"introduced": "1.9"}, {"fixed": "1.11"}], conda_key)
    assert not in_range("1.10", [{"introduced": "0"}, {"limit": "1.2"}], conda_key)
    assert comparator("pip", "GIT") is None


def test_semver_precedence_and_cvss() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
             "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1+build.5"]
    keys = [semver_key(v) for v in order]
    assert keys == sorted(keys) and semver_key("1.0") is None
    assert cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == 6.1
    assert cvss3_score("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N") == 5.5
    assert cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N") == 0.0
    assert cvss3_score("CVSS:4.0/AV:N") is None


def test_matching_by_ecosystem_name_and_channel() -> None:
    advisory = {"id": "X-1", "affected": [
        {"package": {"ecosystem": "conda:conda-forge", "name": "OpenSSL"},
         "versions": ["3.0.0"]},
        {"package": {"ecosystem": "PyPI", "name": "Foo_Bar"}, "versions": ["1.0"]},
    ], "severity": [{"type": "CVSS_V3", "score": "7.5"}]}
    advisories = load_db_from(advisory)
    packages = [conda("openssl", "3.0.0"), conda("foo-bar", "1.0"), pip("foo.bar", "1.0.0"),
                pip("openssl", "3.0.0")]
    findings, _ = match(advisories, packages)
    assert [(f.manager, f.name, f.severity.level, f.severity.score) for f in findings] == [
        ("pip", "foo.bar", "high", 7.5), ("conda", "openssl", "high", 7.5)]


def load_db_from(*advisories: dict[str, Any]) -> Any:
    from envctl.lifecycle.osv import Advisory

    return [Advisory(a["id"], "", (), a) for a in advisories]


def test_database_formats(tmp_path: Path) -> None:
    advisories = json.loads(DB.read_text())
    folder = tmp_path / "db"
    folder.mkdir()
    for item in advisories:
        (folder / f"{item['id']}.json").write_text(json.dumps(item))
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for item in advisories:
            zf.writestr(f"{item['id']}.json", json.dumps(item))
    api = tmp_path / "api.json"
    api.write_text(json.dumps({"results": [{"vulns": advisories[:2]}, {}]}))
    ids = sorted(a["id"] for a in advisories)
    assert sorted(a.id for a in load_db(folder)) == ids
    assert sorted(a.id for a in load_db(archive)) == ids
    assert sorted(a.id for a in load_db(api)) == sorted(a["id"] for a in advisories[:2])
    bad = tmp_path / "bad.json"
    bad.write_text('{"nope": 1}')
    with pytest.raises(AdvisoryDbError):
        load_db(bad)
    with pytest.raises(AdvisoryDbError):
        load_db(tmp_path / "missing.json")
