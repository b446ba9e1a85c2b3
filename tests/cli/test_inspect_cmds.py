"""``envctl lint``, ``list`` and ``show`` through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.cli.main import app

CONFIG = """\
channels:
  conda-forge: https://conda.anaconda.org/conda-forge
platforms: [linux-64, osx-arm64]
pypi_index: https://pypi.example.invalid/simple/
mutable_tags: [latest, candidate, stable, nightly, "dev-*"]
"""

BASE = """\
description: Data science base
owners: [ranking]
tags:
  v1:
    dependencies: [python=3.11, numpy>=1.26]
    pypi: [itsdangerous==2.1.2]
  v2:
    extends: v1
    dependencies: [pandas]
  stable: {points_to: v1}
  nightly:
    dependencies: [python=3.12]
"""

REQ, FULL = "1" * 40, "2" * 40


def meta() -> str:
    return yamlio.dump({
        "version": "1", "alias": "ranking/base:v1", "exclude_newer": "2024-01-01T00:00:00Z",
        "resolved_at": "2024-01-02T03:04:05Z", "resolved_by": "ci-bot",
        "envctl_version": "0.1.0", "lock_sha256": "0" * 64,
        "platforms": {
            p: {
                "req_id": REQ if p == "linux-64" else "3" * 40,
                "full_id": FULL if p == "linux-64" else "4" * 40,
                "request": {
                    "version": "1", "platform": p, "channels": ["conda-forge"],
                    "dependencies": ["numpy >=1.26", "python 3.11.*"],
                    "pypi": ["itsdangerous==2.1.2"], "virtual_packages": {},
                    "base_full_id": None, "exclude_newer": "2024-01-01T00:00:00Z",
                },
            }
            for p in ("linux-64", "osx-arm64")
        },
    })


def lock() -> str:
    rows = [("python", "3.11.9", "conda"), ("numpy", "1.26.4", "conda"),
            ("itsdangerous", "2.1.2", "pip")]
    return yamlio.dump({
        "version": "1",
        "metadata": {},
        "package": [
            {"name": n, "version": v, "manager": m, "platform": p, "url": f"https://x/{n}",
             "hash": {"md5": "d" * 32, "sha256": "e" * 64},
             **({"build": "py_0"} if m == "conda" else {})}
            for p in ("linux-64", "osx-arm64") for n, v, m in rows
        ],
    })


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {
        "catalog.yaml": CONFIG,
        "envs/ranking/base.yaml": BASE,
        "envs/search/query.yaml": "description: Query understanding\ntags:\n"
        "  v1:\n    dependencies: [numpy]\n",
        "locks/ranking/base/v1.meta.yaml": meta(),
        "locks/ranking/base/v1.conda-lock.yml": lock(),
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def run(root: Path, *args: str):
    # A wide terminal, so rich does not wrap the lines asserted on.
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["--catalog", str(root), *args], catch_exceptions=False
    )
    assert "Traceback" not in result.output
    return result


# -- lint -------------------------------------------------------------------------------


def test_lint_ok(root: Path) -> None:
    result = run(root, "lint")
    assert result.exit_code == 0
    assert result.stdout == "2 environments, 5 tags: ok\n"


def test_lint_lists_every_problem(root: Path) -> None:
    (root / "envs/bad.yaml").write_text(
        "tags:\n"
        "  v3: {points_to: v1}\n"
        "  stable: {points_to: v9}\n"
        "  v1:\n    channels: [internal]\n    dependencies: ['numpy >=>=1']\n"
    )
    result = run(root, "lint")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "envs/bad.yaml:2: tag v3 is immutable, so it cannot be a pointer (points_to: v1) "
        "[immutable-pointer] — give v3 its own spec (e.g. 'extends: v1' plus dependencies), "
        "or use a mutable tag for the pointer (latest, candidate, stable, nightly, dev-*)",
        "envs/bad.yaml:3: tag stable points to v9, which bad does not declare "
        "[pointer-target-missing] — point it at one of: v1",
        "envs/bad.yaml:5: tag v1 uses channel 'internal', which catalog.yaml does not declare "
        "[unknown-channel] — declare it under 'channels:' in catalog.yaml or use one of: "
        "conda-forge",
        "envs/bad.yaml:6: tag v1: invalid conda requirement 'numpy >=>=1': "
        + result.stdout.split("'numpy >=>=1': ", 1)[1].split("\n", 1)[0],
        "4 problems in 3 environments, 8 tags",
    ]
    assert "[invalid-requirement] — write it like 'numpy >=1.26' or 'python=3.11'" in (
        result.stdout
    )


def test_lint_json(root: Path) -> None:
    (root / "locks/ranking/base/v7.meta.yaml").write_text("x: y\n")
    result = run(root, "lint", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data == {
        "ok": False,
        "environments": 2,
        "tags": 5,
        "problems": 1,
        "findings": [{
            "file": "locks/ranking/base/v7.meta.yaml",
            "line": None,
            "tag": "v7",
            "rule": "orphan-lock",
            "message": "locks/ranking/base/v7.meta.yaml belongs to no declared tag: "
            "ranking/base declares no tag v7",
            "fix": "delete it, or restore the tag it was written for",
        }],
    }
    assert json.loads(run(root, "lint", "--json").stdout)["ok"] is False


def test_lint_a_revision(root: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example", *args],
            check=True, capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "catalog")
    (root / "envs/bad.yaml").write_text("tags:\n  stable: {points_to: v1}\n")
    assert run(root, "lint").exit_code == 1
    result = run(root, "lint", "--rev", "HEAD")
    assert (result.exit_code, result.stdout) == (0, "2 environments, 5 tags: ok\n")
    result = run(root, "lint", "--rev", "nope")
    assert result.exit_code == 1
    assert "unknown git revision 'nope' [unknown-revision]" in result.stderr


def test_not_a_catalog(tmp_path: Path) -> None:
    result = run(tmp_path, "lint")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {tmp_path}: {tmp_path} is not a catalog")
    assert len(result.stderr.strip().splitlines()) == 1


# -- list -------------------------------------------------------------------------------


def test_list_table(root: Path) -> None:
    result = run(root, "list")
    assert result.exit_code == 0
    for part in ("ranking/base", "v1 v2 stable*→v1 nightly*", "Data science base", "ranking",
                 "search/query", "Query understanding"):
        assert part in result.stdout


def test_list_json_and_pattern(root: Path) -> None:
    result = run(root, "list", "ranking/*", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{
        "name": "ranking/base",
        "description": "Data science base",
        "owners": ["ranking"],
        "tags": [
            {"tag": "v1", "mutable": False, "state": "frozen", "points_to": None},
            {"tag": "v2", "mutable": False, "state": "pending", "points_to": None},
            {"tag": "stable", "mutable": True, "state": "frozen", "points_to": "v1"},
            {"tag": "nightly", "mutable": True, "state": "rolling", "points_to": None},
        ],
    }]
    assert json.loads(run(root, "list", "nope/*", "--json").stdout) == []
    result = run(root, "list", "nope/*")
    assert (result.exit_code, result.stdout) == (0, "no environments match 'nope/*'\n")


# -- show -------------------------------------------------------------------------------


def test_show_pointer_text(root: Path) -> None:
    result = run(root, "show", "ranking/base:stable")
    assert result.exit_code == 0
    out = result.stdout
    assert out.splitlines()[0] == "ranking/base:stable → ranking/base:v1"
    assert "of type mixed, frozen" in out
    assert ("Aliases                  ranking/base:v1, ranking/base:stable (mutable), "
            "ranking/base:latest (mutable, implicit)") in out
    assert "conda::numpy >=1.26, conda::python 3.11.*, pypi::itsdangerous==2.1.2" in out
    assert "User sources" in out and "conda::conda-forge, pypi" in out
    assert f"linux-64  full hash {REQ}:{FULL}" in out
    assert "Conda packages installed: numpy==1.26.4-py_0, python==3.11.9-py_0" in out
    assert "Pypi packages installed: itsdangerous==2.1.2" in out
    assert "Resolved by" in out and "ci-bot" in out


def test_show_pending_text(root: Path) -> None:
    result = run(root, "show", "ranking/base:v2", "--platform", "linux-64")
    assert result.exit_code == 0
    assert "of type mixed, pending" in result.stdout
    assert "ranking/base:v1" in result.stdout  # the base
    assert "(provisional until CI locks it)" in result.stdout
    assert "linux-64  req_id " in result.stdout
    assert "osx-arm64  req_id" not in result.stdout


def test_show_json(root: Path) -> None:
    result = run(root, "show", "ranking/base", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["asked"], data["alias"], data["resolved_via"]) == (
        "ranking/base", "ranking/base:v1", "newest-frozen",
    )
    assert [p["id"] for p in data["environments"]] == [f"{REQ}:{FULL}", f"{'3' * 40}:{'4' * 40}"]
    assert data["aliases"][1] == {"alias": "ranking/base:stable", "mutable": True,
                                  "implicit": False}


def test_show_by_id_json(root: Path) -> None:
    result = run(root, "show", f"{REQ}:{FULL}", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["alias"], data["state"]) == ("ranking/base:v1", "frozen")
    assert [p["platform"] for p in data["environments"]] == ["linux-64"]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ranking/bsae:v1", "error: envs/ranking/bsae.yaml: no environment named ranking/bsae "
         "[not-found] — did you mean ranking/base?"),
        ("ranking/base:v9", "error: envs/ranking/base.yaml [v9]: ranking/base has no tag 'v9' "
         "[not-found] — ranking/base has tags: v1, v2, stable, nightly"),
        (f"{'9' * 40}:{'8' * 40}", f"error: no environment in this catalog has the id "
         f"{'9' * 40}:{'8' * 40} [unknown-id]"),
        ("search/query", "error: envs/search/query.yaml [latest]: search/query declares no "
         "'latest' tag and has no locked immutable tag yet [not-found]"),
    ],
)
def test_show_errors_are_one_line(root: Path, ref: str, expected: str) -> None:
    result = run(root, "show", ref)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(expected)


def test_show_unknown_platform(root: Path) -> None:
    result = run(root, "show", "ranking/base:v1", "--platform", "win-64")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: envs/ranking/base.yaml [v1]: ranking/base:v1 is not declared for win-64 "
        "[unknown-platform] — use one of: linux-64, osx-arm64"
    )


@pytest.mark.parametrize("command", ["lint", "list", "show"])
def test_help_has_examples(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert f"envctl {command}" in result.stdout
