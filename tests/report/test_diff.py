"""``envctl diff``: package diffs of real resolved locks, of foreign conda-lock files, and the
ways a side can be named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.errors import LockfileError
from envctl.report.diff import EnvDiff, compare_versions, diff_locks, diff_packages
from envctl.report.locks import read_any_lock
from envctl.resolve.lockfile import LockedPackage, read_lock

from .conftest import ReportRepo

# -- units: versions and package pairs ----------------------------------------------------------


@pytest.mark.parametrize(("manager", "old", "new", "want"), [
    ("conda", "1.9", "1.10", -1),        # not string order
    ("conda", "1.0rc1", "1.0", -1),
    ("conda", "1.0", "1.0.0", 0),         # conda pads with zeros
    ("conda", "2.0", "1!1.0", -1),        # an epoch wins
    ("conda", "3.0.7", "3.0.10", -1),
    ("pypi", "2.2.0", "2.1.2", 1),
    ("pypi", "1.0.dev1", "1.0", -1),
    ("pypi", "1.0.post1", "1.0", 1),
    ("pypi", "not a version!", "1.0", None),
])
def test_compare_versions(manager: str, old: str, new: str, want: int | None) -> None:
    assert compare_versions(manager, old, new) == want


def pkg(name: str, version: str, build: str | None = "0", *, platform: str = "linux-64",
        manager: str = "conda", url: str | None = None, sha256: str | None = None,
        md5: str | None = None) -> LockedPackage:
    url = url or (f"https://conda.example.org/main/{platform}/{name}-{version}-{build}.conda"
                  if manager == "conda" else
                  f"https://files.example.org/{name}-{version}-py3-none-any.whl")
    return LockedPackage(manager, name, version, platform, url, sha256, md5,  # type: ignore[arg-type]
                         build if manager == "conda" else None)


def test_diff_packages_kinds() -> None:
    old = [pkg("a", "1.0"), pkg("b", "2.0"), pkg("c", "1.0", "cpu_0"), pkg("d", "1.0"),
           pkg("gone", "1.0"), pkg("Foo_Bar", "1.0", manager="pip")]
    new = [pkg("a", "1.10"), pkg("b", "1.9"), pkg("c", "1.0", "cuda_1"),
           pkg("d", "1.0", url="https://mirror.example.org/main/linux-64/d-1.0-0.conda"),
           pkg("new", "0.1"), pkg("foo-bar", "1.1", manager="pip")]
    changes = {(c.manager, c.name): c for c in diff_packages(old, new)}
    assert {k: c.change for k, c in changes.items()} == {
        ("conda", "a"): "upgraded",
        ("conda", "b"): "downgraded",
        ("conda", "c"): "rebuilt",
        ("conda", "d"): "changed",
        ("conda", "gone"): "removed",
        ("conda", "new"): "added",
        ("pypi", "foo-bar"): "upgraded",  # PyPI names compare normalised
    }
    assert changes[("conda", "c")].old == "1.0 cpu_0"
    assert changes[("conda", "c")].new == "1.0 cuda_1"
    assert changes[("conda", "d")].detail == "url changed"
    assert diff_packages(old, old) == []


def test_conda_and_pypi_packages_of_one_name_are_separate() -> None:
    old = [pkg("six", "1.16.0")]
    new = [pkg("six", "1.16.0"), pkg("six", "1.17.0", manager="pip")]
    [change] = diff_packages(old, new)
    assert (change.manager, change.name, change.change) == ("pypi", "six", "added")


# -- real resolved locks ------------------------------------------------------------------------


def rows(diff: EnvDiff) -> set[tuple[str, str, str, str, str | None, str | None]]:
    return {(platform, c.manager, c.name, c.change, c.old, c.new)
            for platform, c in diff.changes}


@pytest.mark.slow
def test_upgrade_add_build_change_and_pypi_change(report_repo: ReportRepo) -> None:
    v1, v2 = (read_lock(report_repo.lock(t).read_bytes()) for t in ("v1", "v2"))
    diff = diff_locks(v1, v2, old_label="team/app:v1", new_label="team/app:v2")
    both = ("linux-64", "osx-arm64")
    assert rows(diff) == {
        *((p, "conda", "tinynum", "upgraded", "1.0 py_0", "1.1 py_0") for p in both),
        *((p, "conda", "libalpha", "upgraded", "1.0 0", "1.1 0") for p in both),
        *((p, "conda", "tinydata", "added", None, "1.0 0") for p in both),
        *((p, "pypi", "itsdangerous", "upgraded", "2.1.2", "2.2.0") for p in both),
        # __cuda only on linux-64: the same torchlet version, another build, there only.
        ("linux-64", "conda", "torchlet", "rebuilt", "1.0 cpu_0", "1.0 cuda_1"),
    }
    assert diff.summary == ("team/app:v1 → team/app:v2: conda 1 added, 2 upgraded, 1 rebuilt "
                            "(linux-64 only); pypi 1 upgraded")
    assert diff.counts() == {"conda": {"added": 1, "upgraded": 2, "rebuilt": 1},
                             "pypi": {"upgraded": 1}}
    for p in diff.platforms:
        assert p.status == "changed"
        assert p.old_full_id == v1.recorded_full_id(p.platform)
        assert p.new_full_id == v2.recorded_full_id(p.platform)


@pytest.mark.slow
def test_downgrade_and_remove(report_repo: ReportRepo) -> None:
    v2, v3 = (read_lock(report_repo.lock(t).read_bytes()) for t in ("v2", "v3"))
    diff = diff_locks(v2, v3, old_label="a", new_label="b")
    assert {(c.name, c.change, c.old, c.new) for _p, c in diff.changes} == {
        ("tinynum", "downgraded", "1.1 py_0", "1.0 py_0"),
        ("tinydata", "removed", "1.0 0", None),
    }
    assert diff.summary_body == "conda 1 removed, 1 downgraded"


@pytest.mark.slow
def test_change_on_one_platform_only(report_repo: ReportRepo) -> None:
    v3, v4 = (read_lock(report_repo.lock(t).read_bytes()) for t in ("v3", "v4"))
    diff = diff_locks(v3, v4, old_label="a", new_label="b")
    status = {p.platform: p.status for p in diff.platforms}
    assert status == {"linux-64": "changed", "osx-arm64": "same"}
    assert rows(diff) == {("linux-64", "conda", "tinydata", "added", None, "1.0 0")}
    assert diff.summary_body == "conda 1 added (linux-64 only)"
    osx = next(p for p in diff.platforms if p.platform == "osx-arm64")
    assert osx.old_full_id == osx.new_full_id  # nothing changed there, ids agree


# -- the CLI ------------------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.slow
def test_cli_two_tags_table_has_no_colour_codes(in_catalog: Path) -> None:
    code, out = invoke("diff", "team/app:v1", "team/app:v2")
    assert code == 0
    assert out.splitlines()[0] == (
        "team/app:v1 → team/app:v2: conda 1 added, 2 upgraded, 1 rebuilt (linux-64 only); "
        "pypi 1 upgraded")
    assert re.search(r"linux-64 +│ conda │ torchlet +│ ⟳ rebuilt", out)
    assert "\x1b[" not in out  # not a terminal: rich writes plain text


@pytest.mark.slow
def test_cli_no_color_wins_over_force_color(in_catalog: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    _code, coloured = invoke("diff", "team/app:v1", "team/app:v2")
    assert "\x1b[32m" in coloured or "\x1b[36m" in coloured  # FORCE_COLOR alone: colours
    monkeypatch.setenv("NO_COLOR", "1")
    _code, plain = invoke("diff", "team/app:v1", "team/app:v2")
    assert not re.search(r"\x1b\[(3\d|9\d)", plain)


@pytest.mark.slow
def test_cli_json_shape(in_catalog: Path) -> None:
    code, out = invoke("diff", "team/app:v3", "team/app:v4", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["old", "new", "changed", "summary", "counts", "platforms"]
    assert data["changed"] is True
    linux = data["platforms"][0]
    assert list(linux) == ["platform", "status", "old_full_id", "new_full_id", "old_packages",
                           "new_packages", "changes"]
    assert linux["changes"] == [{
        "manager": "conda", "name": "tinydata", "change": "added", "old_version": None,
        "new_version": "1.0", "old_build": None, "new_build": "0", "detail": None}]
    assert data["platforms"][1]["status"] == "same"


@pytest.mark.slow
def test_cli_one_side_compares_with_the_version_before(in_catalog: Path) -> None:
    code, out = invoke("diff", "team/app:v3", "--quiet")
    assert code == 0
    assert out.strip() == "team/app:v2 → team/app:v3: conda 1 removed, 1 downgraded"
    code, out = invoke("diff", "team/app:v1")
    assert code == 1
    assert "team/app:v1 has no earlier version to compare with" in out


@pytest.mark.slow
def test_cli_pointer_at_two_revisions(in_catalog: Path, report_repo: ReportRepo) -> None:
    # stable was v2 one commit ago and is v3 now.
    code, out = invoke("diff", "team/app:stable@HEAD~1", "team/app:stable", "--quiet")
    assert out.strip() == ("team/app:stable@HEAD~1 (→v2) → team/app:stable (→v3): conda 1 "
                           "removed, 1 downgraded")
    code2, out2 = invoke("diff", "team/app:stable", "--rev", "HEAD~1", "--rev", "HEAD",
                         "--quiet")
    assert code == code2 == 0
    assert "→v2" in out2 and "→v3" in out2
    # The first commit declared the tags but had no locks yet.
    add = report_repo.commits["add"]
    code, out = invoke("diff", f"team/app:v1@{add}", "team/app:v1")
    assert code == 1
    assert "team/app:v1 has no lock yet (pending)" in out


@pytest.mark.slow
def test_cli_ids_and_lockfile_paths(in_catalog: Path, report_repo: ReportRepo) -> None:
    v2 = read_lock(report_repo.lock("v2").read_bytes())
    v3 = read_lock(report_repo.lock("v3").read_bytes())
    id2 = f"{v2.req_id('osx-arm64')}:{v2.recorded_full_id('osx-arm64')}"
    id3 = f"{v3.req_id('osx-arm64')}:{v3.recorded_full_id('osx-arm64')}"
    code, out = invoke("diff", id2, id3, "--json")
    data = json.loads(out)
    assert code == 0
    assert [p["platform"] for p in data["platforms"]] == ["osx-arm64"]
    assert "(team/app:v2 osx-arm64)" in data["old"]
    # A lockfile path on one side, a tag on the other; --exit-code like git diff.
    code, out = invoke("diff", str(report_repo.lock("v2")), "team/app:v3", "--exit-code",
                       "--platform", "linux-64", "--quiet")
    assert code == 1
    assert out.strip().endswith("conda 1 removed, 1 downgraded")
    code, _out = invoke("diff", str(report_repo.lock("v2")), "team/app:v2", "--exit-code")
    assert code == 0
    code, out = invoke("diff", "nowhere/conda-lock.yml", "team/app:v2")
    assert code == 1 and "no such lockfile: nowhere/conda-lock.yml" in out


@pytest.mark.slow
def test_cli_markdown(in_catalog: Path) -> None:
    code, out = invoke("diff", "team/app:v1", "team/app:v2", "--format", "md")
    assert code == 0
    assert out.startswith("**team/app:v1 → team/app:v2**: conda 1 added, 2 upgraded, 1 rebuilt"
                          " (linux-64 only); pypi 1 upgraded\n\n| platform | manager |")
    assert "| linux-64 | conda | `torchlet` | ⟳ rebuilt | 1.0 cpu\\_0 | 1.0 cuda\\_1 |" in out
    assert "| all | pypi | `itsdangerous` | ↑ upgraded | 2.1.2 | 2.2.0 |" in out


@pytest.mark.slow
def test_cli_whole_catalog_between_revisions(in_catalog: Path) -> None:
    code, out = invoke("diff", "--rev", "main", "--rev", "pr-good", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["envs_added"] == ["team/new"]
    changes = {c["alias"]: c for c in data["changes"]}
    assert {a: c["change"] for a, c in changes.items()} == {
        "team/app:v5": "added", "team/app:stable": "moved", "team/new:v1": "added"}
    moved = changes["team/app:stable"]
    assert (moved["old_target"], moved["new_target"]) == ("v3", "v2")
    assert moved["packages"]["summary"] == ("team/app:v3 → team/app:v2: conda 1 added, "
                                            "1 upgraded")
    added = changes["team/app:v5"]
    assert added["compared_with"] == "team/app:v4"  # its extends base
    assert added["requested"] == {"added": ["conda::tinyframe 0.9.*"], "removed": []}
    assert added["state"] == "pending" and added["packages"] is None
    # Nothing changed: no tag changes, and --exit-code says so.
    code, out = invoke("diff", "--rev", "main", "--exit-code", "--quiet")
    assert code == 0
    assert re.fullmatch(r"main \([0-9a-f]{12}\) → work tree: 0 tag changes", out.strip())


@pytest.mark.slow
def test_cli_a_git_revision_as_a_side_suggests_rev(in_catalog: Path) -> None:
    code, out = invoke("diff", "HEAD~3", "HEAD")
    assert (code, out) == (1, "error: 'HEAD~3' is a git revision, not an environment or a "
                              "lockfile [usage] — compare the whole catalog at those "
                              "revisions: envctl diff --rev HEAD~3 --rev HEAD\n")
    code, out = invoke("diff", "main", "pr-good")  # names git resolves, no ~ or ^
    assert code == 1 and out.endswith("envctl diff --rev main --rev pr-good\n")
    code, out = invoke("diff", "HEAD^", "team/app:v2")  # one side is a tag: NAME:TAG@REV
    assert code == 1 and out.endswith("— name a tag at that revision: NAME:TAG@HEAD^, or use "
                                      "--rev HEAD^\n")
    # A tag that is not there keeps its own error.
    code, out = invoke("diff", "team/app:v1", "team/app:v9")
    assert code == 1 and "team/app has no tag 'v9' [not-found]" in out


def test_cli_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = invoke("diff")
    assert code == 1 and "nothing to compare" in out
    code, out = invoke("diff", "a:v1", "a:v2", "a:v3")
    assert code == 1 and "at most two sides" in out


# -- conda-lock files other tools wrote ---------------------------------------------------------

FOREIGN_OLD = """\
# generated by conda-lock: main and dev entries, md5 only, a pip package from git
version: 1
metadata:
  content_hash:
    linux-64: 0f1e2d
  channels:
  - url: conda-forge
    used_env_vars: []
  platforms:
  - linux-64
  sources:
  - environment.yml
  time_metadata:
    created_at: '2024-05-01T00:00:00Z'
  git_metadata:
    git_user_name: someone
package:
- name: openssl
  version: 3.0.7
  manager: conda
  platform: linux-64
  dependencies:
    ca-certificates: ''
  url: https://conda.anaconda.org/conda-forge/linux-64/openssl-3.0.7-h0b41bf4_1.conda
  hash:
    md5: f3f9de449d32ca9b9c66a22863c96f41
  category: main
  optional: false
- name: openssl
  version: 3.0.7
  manager: conda
  platform: linux-64
  dependencies:
    ca-certificates: ''
  url: https://conda.anaconda.org/conda-forge/linux-64/openssl-3.0.7-h0b41bf4_1.conda
  hash:
    md5: f3f9de449d32ca9b9c66a22863c96f41
  category: dev
  optional: true
- name: pytest
  version: 7.4.0
  manager: conda
  platform: linux-64
  dependencies: {}
  url: https://conda.anaconda.org/conda-forge/noarch/pytest-7.4.0-pyhd8ed1ab_0.conda
  hash:
    md5: 3cfe9b9e958e7238a386933c75d190db
  category: dev
  optional: true
- name: mylib
  version: 0.3.0
  manager: pip
  platform: linux-64
  dependencies: {}
  url: git+https://github.com/example/mylib.git@1111111111111111111111111111111111111111
  hash:
    sha256: 1111111111111111111111111111111111111111
  source:
    type: url
    url: git+https://github.com/example/mylib.git@1111111111111111111111111111111111111111
  category: main
  optional: false
- name: localpkg
  version: 1.0.0
  manager: pip
  platform: linux-64
  dependencies: {}
  url: file:///home/someone/src/localpkg
  hash: {}
  category: main
  optional: false
"""


def foreign_new() -> str:
    return (FOREIGN_OLD
            .replace("openssl-3.0.7-h0b41bf4_1", "openssl-3.0.10-hd590300_0")
            .replace("version: 3.0.7", "version: 3.0.10")
            .replace("1111111111111111111111111111111111111111",
                     "2222222222222222222222222222222222222222"))


def test_foreign_lock_is_read() -> None:
    lock = read_any_lock(FOREIGN_OLD.encode(), file="conda-lock.yml")
    by_name = {p.name: p for p in lock.packages}
    assert sorted(by_name) == ["localpkg", "mylib", "openssl", "pytest"]
    assert by_name["openssl"].categories == ("dev", "main")  # two entries, one package
    assert by_name["openssl"].sha256 is None and by_name["openssl"].md5
    # No build field (older conda-lock): taken from the file name, so rebuilds show.
    assert by_name["openssl"].build == "h0b41bf4_1"
    assert by_name["pytest"].build == "pyhd8ed1ab_0"
    assert by_name["mylib"].url.startswith("git+https://")
    assert lock.platforms == ("linux-64",)


def test_foreign_lock_without_md5_or_hash_is_read_leniently() -> None:
    text = FOREIGN_OLD.replace("    md5: f3f9de449d32ca9b9c66a22863c96f41\n", "    sha256: "
                               + "a" * 64 + "\n").replace("  hash: {}\n", "")
    with pytest.raises(LockfileError):  # the strict reader refuses it...
        read_lock(text.encode())
    lock = read_any_lock(text.encode())  # ...the report reader takes it
    assert {p.name for p in lock.packages} == {"localpkg", "mylib", "openssl", "pytest"}


def test_foreign_locks_diff() -> None:
    old = read_any_lock(FOREIGN_OLD.encode())
    new = read_any_lock(foreign_new().encode())
    diff = diff_locks(old, new, old_label="old", new_label="new")
    changes = {c.name: c for _p, c in diff.changes}
    assert set(changes) == {"openssl", "mylib"}
    assert changes["openssl"].change == "upgraded"  # 3.0.10 > 3.0.7, not string order
    assert (changes["openssl"].old_version, changes["openssl"].new_version) == ("3.0.7",
                                                                                "3.0.10")
    assert changes["mylib"].change == "changed"
    assert changes["mylib"].detail == "git 111111111111 → 222222222222"
    assert diff.summary_body == "conda 1 upgraded; pypi 1 changed"
    rebuilt = read_any_lock(FOREIGN_OLD.replace("h0b41bf4_1", "h0b41bf4_2").encode())
    [(platform, change)] = diff_locks(old, rebuilt, old_label="a", new_label="b").changes
    assert (platform, change.change, change.old, change.new) == (
        "linux-64", "rebuilt", "3.0.7 h0b41bf4_1", "3.0.7 h0b41bf4_2")


def test_foreign_lock_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.conda-lock.yml").write_text(FOREIGN_OLD)
    (tmp_path / "new.conda-lock.yml").write_text(foreign_new())
    code, out = invoke("diff", "old.conda-lock.yml", "new.conda-lock.yml", "--json")
    assert code == 0
    assert json.loads(out)["summary"] == ("old.conda-lock.yml → new.conda-lock.yml: conda 1 "
                                          "upgraded; pypi 1 changed")
    (tmp_path / "bad.yml").write_text("version: 7\npackage: []\n")
    code, out = invoke("diff", "old.conda-lock.yml", "bad.yml")
    assert code == 1 and "version '7' is not supported" in out
