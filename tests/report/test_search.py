"""``envctl search``: by text and by a package the locks contain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.catalog import Catalog, WorkTreeSource
from envctl.errors import EnvctlError
from envctl.report.search import PackageQuery, parse_package_query, search

from .conftest import ReportRepo


def invoke(*args: str) -> tuple[int, str]:
    from envctl.cli.main import app

    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("text", "want"), [
    ("openssl", PackageQuery("openssl")),
    ("openssl=3.0.7", PackageQuery("openssl", "3.0.7")),
    ("openssl==3.0.7", PackageQuery("openssl", "3.0.7")),
    ("openssl 3.0.7", PackageQuery("openssl", "3.0.7")),
    ("torchlet=1.0=cuda*", PackageQuery("torchlet", "1.0", "cuda*")),
    # A version range is a conda match spec, read by rattler.
    ("tinynum>=1", PackageQuery("tinynum", spec=">=1")),
    ("numpy >=1.26,<2 py*", PackageQuery("numpy", None, "py*", ">=1.26,<2")),
    ("numpy[version='>=1.26', build=py*]", PackageQuery("numpy", None, "py*", ">=1.26")),
    ("numpy!=1.26.4", PackageQuery("numpy", spec="!=1.26.4")),
])
def test_parse_package_query(text: str, want: PackageQuery) -> None:
    assert parse_package_query(text) == want


@pytest.mark.parametrize("text", ["", "=1.0", "a=1=2=3", "a=", "tiny*>=1", ">=1"])
def test_bad_package_query(text: str) -> None:
    with pytest.raises(EnvctlError, match="is not a package query") as info:
        parse_package_query(text)
    assert info.value.fix is not None and "conda match spec" in info.value.fix


def test_a_match_spec_part_search_cannot_match_is_refused() -> None:
    with pytest.raises(EnvctlError) as info:
        parse_package_query("conda-forge::numpy>=1.26")
    assert info.value.message == ("'conda-forge::numpy>=1.26': search matches a package's "
                                  "name, version and build only, not channel")


def found(catalog: Catalog, text: str | None = None,
          package: str | None = None) -> dict[str, list[str]]:
    hits = search(catalog, text, parse_package_query(package) if package else None)
    return {h.name: [t.tag for t in h.tags] for h in hits}


@pytest.mark.slow
def test_search_by_package(report_repo: ReportRepo) -> None:
    catalog = Catalog(WorkTreeSource(report_repo.root))
    assert found(catalog, package="tinydata") == {"team/app": ["v2", "v4"]}
    assert found(catalog, package="tinynum=1.0") == {"team/app": ["v1", "v3", "v4"]}
    assert found(catalog, package="tinynum=1.*") == {"team/app": ["v1", "v2", "v3", "v4"]}
    assert found(catalog, package="torchlet=1.0=cuda*") == {"team/app": ["v2", "v3", "v4"]}
    # PyPI names match normalised; the version exactly.
    assert found(catalog, package="ItsDangerous==2.1.2") == {"team/app": ["v1"]}
    assert found(catalog, package="openssl=3.0.7") == {}
    # Text and package together: both must match.
    assert found(catalog, "gpu", package="torchlet") == {}
    assert found(catalog, "report", package="tinydata") == {"team/app": ["v2", "v4"]}

    # Version ranges (conda match specs), for conda and PyPI packages alike.
    assert found(catalog, package="tinynum>=1.1") == {"team/app": ["v2"]}
    assert found(catalog, package="tinynum <1.1") == {"team/app": ["v1", "v3", "v4"]}
    assert found(catalog, package="tinynum>=1.0,<2 py*") == {
        "team/app": ["v1", "v2", "v3", "v4"]}
    assert found(catalog, package="itsdangerous>=2.2") == {"team/app": ["v2", "v3", "v4"]}
    assert found(catalog, package="tinynum>=9") == {}

    [hit] = search(catalog, None, parse_package_query("torchlet=1.0=cuda*"))
    v3 = next(t for t in hit.tags if t.tag == "v3")
    assert v3.aliases == ["stable"]
    [package] = v3.packages
    assert (package.manager, package.version, package.build, package.platforms) == (
        "conda", "1.0", "cuda_1", ["linux-64"])  # the cuda build exists on linux only


@pytest.mark.slow
def test_search_by_text(report_repo: ReportRepo) -> None:
    catalog = Catalog(WorkTreeSource(report_repo.root))
    assert list(found(catalog, "GPU")) == ["vision/train"]  # description, any case
    assert list(found(catalog, "team")) == ["team/app"]  # name and owner
    assert list(found(catalog, "vision/")) == ["vision/train"]
    [hit] = search(catalog, "vision")
    assert hit.matched == ["name", "description", "owner"]
    assert found(catalog, "nothing-like-this") == {}


@pytest.mark.slow
def test_cli_search(in_catalog: Path) -> None:
    code, out = invoke("search", "--package", "itsdangerous=2.2.0", "--json")
    assert code == 0
    data = json.loads(out)
    assert [h["name"] for h in data] == ["team/app"]
    assert list(data[0]) == ["name", "description", "owners", "matched", "tags"]
    assert data[0]["matched"] == ["package"]
    assert [t["tag"] for t in data[0]["tags"]] == ["v2", "v3", "v4"]
    assert data[0]["tags"][0]["packages"] == [{
        "manager": "pypi", "name": "itsdangerous", "version": "2.2.0", "build": None,
        "platforms": ["linux-64", "osx-arm64"]}]
    code, out = invoke("search", "--package", "torchlet=1.0=cuda*")
    assert code == 0
    assert "team/app" in out and "torchlet 1.0 cuda_1 [conda]" in out
    assert "v3 (stable)" in out
    code, out = invoke("search", "gpu")
    assert code == 0 and "vision/train" in out and "team/app" not in out
    code, out = invoke("search", "--package", "openssl=3.0.7")
    assert code == 0 and out.strip() == "no environment matches package openssl=3.0.7"
    code, out = invoke("search", "--package", "tinynum>=9")
    assert code == 0 and out.strip() == "no environment matches package tinynum >=9"
    code, out = invoke("search", "--package", "tinynum>=1.1")
    assert code == 0 and "tinynum 1.1" in out and "tinynum 1.0" not in out
    code, out = invoke("search", "--package", "conda-forge::tinynum>=1")
    assert code == 1 and out.startswith("error: 'conda-forge::tinynum>=1': search matches a ")
    code, out = invoke("search")
    assert code == 1 and "nothing to search for" in out
    # The first commit declared the tags; their locks came in the next one.
    code, out = invoke("search", "--package", "tinydata", "--rev", "HEAD~4", "--json")
    assert code == 0 and json.loads(out) == []
    code, out = invoke("search", "--package", "tinydata", "--rev", "HEAD~3", "--json")
    assert [t["tag"] for t in json.loads(out)[0]["tags"]] == ["v2", "v4"]


@pytest.mark.slow
def test_each_distinct_lock_is_read_once(report_repo: ReportRepo, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Tags sharing a lock's bytes cost one read (at a revision: one git blob) and one
    scan; a lock not laid out as envctl writes it is parsed whole, with the same answer."""
    import shutil
    import subprocess

    import yaml

    from envctl.catalog import GitSource
    from envctl.report import search as search_module

    root = tmp_path / "catalog"
    shutil.copytree(report_repo.root, root)
    (root / "envs/team/copy.yaml").write_text(
        "description: Same locks\ntags:\n  v1: {dependencies: [python]}\n"
        "  v2: {dependencies: [python]}\n")
    (root / "locks/team/copy").mkdir()
    for tag in ("v1", "v2"):
        shutil.copy(report_repo.lock("v1"), root / f"locks/team/copy/{tag}.conda-lock.yml")
    # Another tool's layout (keys sorted, so entries do not start with "name").
    v2 = yaml.safe_load(report_repo.lock("v2").read_text())
    (root / "locks/team/app/v2.conda-lock.yml").write_text(yaml.safe_dump(v2))
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "copy"], check=True)

    reads: list[str] = []
    scans: list[str] = []
    real_read, real_scan = Catalog.lock_bytes, search_module._package_hits
    monkeypatch.setattr(Catalog, "lock_bytes",
                        lambda self, alias: reads.append(str(alias)) or real_read(self, alias))
    monkeypatch.setattr(search_module, "_package_hits",
                        lambda data, file, match: scans.append(file) or real_scan(data, file,
                                                                                match))
    want = {"team/app": ["v1", "v3", "v4"], "team/copy": ["v1", "v2"]}
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert found(Catalog(GitSource(root, head)), package="tinynum=1.0") == want
    assert sorted(reads) == ["team/app:v1", "team/app:v2", "team/app:v3", "team/app:v4"]
    assert len(scans) == 4
    reads.clear()
    scans.clear()
    # A clean work tree: git's index has the blob ids, so the same four reads (and a look
    # for vision/train:v1's lock, which does not exist).
    assert found(Catalog(WorkTreeSource(root)), package="tinynum=1.0") == want
    assert sorted(reads) == ["team/app:v1", "team/app:v2", "team/app:v3", "team/app:v4",
                             "vision/train:v1"]
    assert len(scans) == 4
    # Outside git: read to hash them (vision/train:v1 too: it has no lock), scanned once each.
    reads.clear()
    scans.clear()
    plain = tmp_path / "plain"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns(".git"))
    assert found(Catalog(WorkTreeSource(plain)), package="tinynum=1.0") == want
    assert len(reads) == 7 and len(scans) == 4
    # The lock in another layout gives what the full parse gives.
    assert found(Catalog(WorkTreeSource(root)), package="tinynum=1.1") == {"team/app": ["v2"]}
    monkeypatch.setattr(search_module, "_scan_lock", lambda *args: None)
    assert found(Catalog(WorkTreeSource(root)), package="tinynum=1.0") == want
    # A lock changed in the work tree (not staged) is read, never taken from the index.
    shutil.copy(report_repo.lock("v2"), root / "locks/team/copy/v2.conda-lock.yml")
    assert found(Catalog(WorkTreeSource(root)), package="tinynum=1.0") == {
        "team/app": ["v1", "v3", "v4"], "team/copy": ["v1"]}
    # Also when git was told not to look (found by review): assume-unchanged, skip-worktree.
    for flag, tag in (("--assume-unchanged", "v1"), ("--skip-worktree", "v2")):
        subprocess.run(["git", "-C", str(root), "update-index", flag,
                        f"locks/team/copy/{tag}.conda-lock.yml"], check=True)
    shutil.copy(report_repo.lock("v2"), root / "locks/team/copy/v1.conda-lock.yml")
    assert found(Catalog(WorkTreeSource(root)), package="tinynum=1.0") == {
        "team/app": ["v1", "v3", "v4"]}
    # Without git on PATH, every lock is hashed: the same answer, no error.
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert found(Catalog(WorkTreeSource(root)), package="tinynum=1.0") == {
        "team/app": ["v1", "v3", "v4"]}
