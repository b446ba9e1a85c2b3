"""``envctl init / new / tag / bump`` through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.cli.main import app
from envctl.config import parse_config
from envctl.spec import ConcreteTag, PointerTag, parse_env_file

runner = CliRunner()


def envctl(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    # An error is one clear line, never a traceback.
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    root = tmp_path / "catalog"
    result = envctl("init", root, "--channel", "conda-forge=https://conda.anaconda.org/conda-forge",
                    "--channel", "local=file:///srv/channel",
                    "--platform", "linux-64", "--platform", "osx-arm64")
    assert result.exit_code == 0, result.output
    return root


def env_file(root: Path, name: str = "ranking/base"):
    path = root / "envs" / f"{name}.yaml"
    return parse_env_file(yamlio.load_path(path), file=str(path))


def test_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    result = envctl("init", tmp_path / "cat", "--store", "/srv/store")
    assert result.exit_code == 0, result.output
    assert "Created catalog at" in result.output
    config = parse_config(yamlio.load_path(tmp_path / "cat/catalog.yaml"))
    assert config.store == "/srv/store"
    log = subprocess.run(["git", "-C", str(tmp_path / "cat"), "log", "--oneline"],
                         capture_output=True, text=True, check=True).stdout
    assert len(log.splitlines()) == 1


def test_init_says_what_ci_installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    result = envctl("init", tmp_path / "cat")
    assert result.exit_code == 0, result.output
    assert "set the repository variable ENVCTL_PIP_SPEC" in result.output

    spec = "git+https://github.com/acme/envctl@v0.1.0"
    result = envctl("init", tmp_path / "spec", "--envctl-spec", spec,
                    "--mutable-tag", "stable", "--mutable-tag", "nightly")
    assert result.exit_code == 0, result.output
    assert "ENVCTL_PIP_SPEC" not in result.output
    resolve = yamlio.load_path(tmp_path / "spec/.github/workflows/resolve.yml")
    assert resolve["env"]["ENVCTL_PIP_SPEC"] == spec
    config = parse_config(yamlio.load_path(tmp_path / "spec/catalog.yaml"))
    assert config.mutable_tags == ["stable", "nightly"]


def test_init_refuses_the_bare_envctl_spec(tmp_path: Path) -> None:
    result = envctl("init", tmp_path / "cat", "--envctl-spec", "envctl")
    assert result.exit_code == 1
    assert result.output.startswith("error: --envctl-spec 'envctl' is not a URL or path")
    assert "[invalid-option]" in result.output and "unrelated project" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "cat").exists()


def test_init_non_empty_refused(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    result = envctl("init", tmp_path)
    assert result.exit_code == 1
    assert "is not empty [not-empty]" in result.output
    assert "--force" in result.output


def test_init_bad_channel_option(tmp_path: Path) -> None:
    result = envctl("init", tmp_path / "cat", "--channel", "conda-forge")
    assert result.exit_code == 1
    assert "is not NAME=URL [invalid-option]" in result.output


def test_new_then_existing_tag(catalog: Path) -> None:
    result = envctl("--catalog", catalog, "new", "ranking/base:v1", "--dep", "python=3.11",
                    "--dep", "numpy>=1.26", "--pypi", "itsdangerous==2.1.2",
                    "--description", "Ranking base", "--owner", "ranking")
    assert result.exit_code == 0, result.output
    assert "Added ranking/base:v1 to envs/ranking/base.yaml" in result.output
    env = env_file(catalog)
    assert env.description == "Ranking base" and env.owners == ["ranking"]
    v1 = env.tags["v1"]
    assert isinstance(v1, ConcreteTag) and v1.pypi == ["itsdangerous==2.1.2"]

    result = envctl("--catalog", catalog, "new", "ranking/base:v1", "--dep", "pandas")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (
        "error: envs/ranking/base.yaml [v1]: ranking/base:v1 already exists [tag-exists] — "
        "use 'envctl bump ranking/base:v1 --to NEWTAG'"
    )


def test_new_finds_catalog_from_cwd(catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (catalog / "envs/sub").mkdir()
    monkeypatch.chdir(catalog / "envs/sub")
    result = envctl("new", "team/env:v1", "--dep", "numpy", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"alias": "team/env:v1", "file": "envs/team/env.yaml"}


def test_new_near_duplicate_name(catalog: Path) -> None:
    assert envctl("-C", catalog, "new", "team/my-env:v1", "--dep", "numpy").exit_code == 0
    result = envctl("-C", catalog, "new", "team/my.env:v1", "--dep", "numpy")
    assert result.exit_code == 1
    assert "[near-duplicate]" in result.output and "team/my-env" in result.output


def test_new_invalid_dep_and_name(catalog: Path) -> None:
    result = envctl("-C", catalog, "new", "team/env:v1", "--dep", "numpy >>= 1")
    assert result.exit_code == 1
    assert "[invalid-requirement]" in result.output
    result = envctl("-C", catalog, "new", "Team/env:v1", "--dep", "numpy")
    assert result.exit_code == 1
    assert "lower case" in result.output


def test_new_from_environment_yml(catalog: Path, tmp_path: Path) -> None:
    source = tmp_path / "environment.yml"
    source.write_text(
        "name: whatever\n"
        "channels: [conda-forge, nodefaults]\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - pip\n"
        "  - pip:\n"
        "    - itsdangerous==2.1.2\n"
    )
    result = envctl("-C", catalog, "new", "ranking/base:v1", "--from", source)
    assert result.exit_code == 0, result.output
    v1 = env_file(catalog).tags["v1"]
    assert isinstance(v1, ConcreteTag)
    assert v1.channels == ["conda-forge"]
    assert v1.dependencies == ["python=3.11", "pip"]
    assert v1.pypi == ["itsdangerous==2.1.2"]

    source.write_text("channels: [bioconda]\ndependencies: [samtools]\n")
    result = envctl("-C", catalog, "new", "ranking/bio:v1", "--from", source)
    assert result.exit_code == 1
    assert "channel 'bioconda' is not declared in catalog.yaml [unknown-channel]" in result.output


def test_tag_moves_pointer(catalog: Path) -> None:
    envctl("-C", catalog, "new", "ranking/base:v1", "--dep", "numpy")
    envctl("-C", catalog, "new", "ranking/base:v2", "--dep", "numpy>=2")
    result = envctl("-C", catalog, "tag", "ranking/base:stable", "--points-to", "v1")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ranking/base:stable: (new) → v1"
    result = envctl("-C", catalog, "tag", "ranking/base:stable", "--points-to", "v2")
    assert result.output.strip() == "ranking/base:stable: v1 → v2"
    assert env_file(catalog).tags["stable"] == PointerTag(points_to="v2")
    result = envctl("-C", catalog, "tag", "ranking/base:stable", "--points-to", "v2", "--json")
    assert json.loads(result.stdout) == {"alias": "ranking/base:stable", "from": "v2", "to": "v2"}


@pytest.mark.parametrize(
    ("pointer", "target", "expected"),
    [
        ("v9", "v1", "[immutable-tag] — pointers must be mutable tags such as stable; "
                     "add the pattern to mutable_tags"),
        ("candidate", "stable", "pointers do not chain [pointer-chain]"),
        ("candidate", "v7", "has no tag 'v7' to point at [missing-target]"),
        ("candidate", "latest", "[mutable-target]"),
    ],
)
def test_tag_refusals(catalog: Path, pointer: str, target: str, expected: str) -> None:
    envctl("-C", catalog, "new", "ranking/base:v1", "--dep", "numpy")
    envctl("-C", catalog, "new", "ranking/base:latest", "--dep", "numpy")
    envctl("-C", catalog, "tag", "ranking/base:stable", "--points-to", "v1")
    result = envctl("-C", catalog, "tag", f"ranking/base:{pointer}", "--points-to", target)
    assert result.exit_code == 1
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bump(catalog: Path) -> None:
    envctl("-C", catalog, "new", "ranking/base:v1", "--dep", "python=3.11", "--dep",
           "numpy>=1.26", "--dep", "pandas")
    envctl("-C", catalog, "tag", "ranking/base:stable", "--points-to", "v1")
    result = envctl("-C", catalog, "bump", "ranking/base:stable", "--to", "v2", "--dep",
                    "numpy>=2", "--drop", "pandas", "--dep", "scipy", "--move", "stable")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Added ranking/base:v2 from ranking/base:v1 in envs/ranking/base.yaml",
        "  ~ numpy>=1.26 → numpy>=2",
        "  + scipy",
        "  - pandas",
        "  stable: v1 → v2",
    ]
    env = env_file(catalog)
    v2 = env.tags["v2"]
    assert isinstance(v2, ConcreteTag)
    assert v2.dependencies == ["python=3.11", "numpy>=2", "scipy"]
    assert env.tags["stable"] == PointerTag(points_to="v2")
    # What the edit commands write is what the check accepts.
    result = envctl("-C", catalog, "lint")
    assert result.exit_code == 0, result.output


def test_bump_keeps_extends_and_json(catalog: Path) -> None:
    envctl("-C", catalog, "new", "ranking/base:v1", "--dep", "python=3.11")
    path = catalog / "envs/ranking/base.yaml"
    path.write_text(path.read_text() + "  v2:\n    extends: v1\n    dependencies: [numpy]\n")
    result = envctl("-C", catalog, "bump", "ranking/base:v2", "--to", "v3", "--dep", "numpy>=2",
                    "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["replaced"] == [{"old": "numpy", "new": "numpy>=2"}]
    assert data["file"] == "envs/ranking/base.yaml"
    v3 = env_file(catalog).tags["v3"]
    assert isinstance(v3, ConcreteTag) and v3.extends == "v1"


def test_bump_refusals(catalog: Path) -> None:
    envctl("-C", catalog, "new", "ranking/base:v1", "--dep", "numpy")
    result = envctl("-C", catalog, "bump", "ranking/base:v1", "--to", "stable")
    assert result.exit_code == 1
    assert "[mutable-bump]" in result.output and "--move stable" in result.output
    result = envctl("-C", catalog, "bump", "ranking/base:v1", "--to", "v1")
    assert "[tag-exists]" in result.output
    result = envctl("-C", catalog, "bump", "ranking/nope:v1", "--to", "v2")
    assert "no environment named ranking/nope [not-found]" in result.output


def test_outside_a_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = envctl("new", "team/env:v1", "--dep", "numpy")
    assert result.exit_code == 1
    assert "[not-a-catalog]" in result.output


@pytest.mark.parametrize("command", ["init", "new", "tag", "bump"])
def test_help_has_examples(command: str) -> None:
    result = envctl(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.output
    assert f"envctl {command} " in result.output
