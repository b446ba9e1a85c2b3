"""envctl.scaffold: ``init`` creates a valid catalog repository in one commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from envctl import yamlio
from envctl.catalog import Catalog, WorkTreeSource
from envctl.config import parse_config
from envctl.errors import EnvctlError
from envctl.scaffold import (
    INITIAL_COMMIT_MESSAGE,
    check_envctl_spec,
    init_catalog,
    parse_channel_option,
    yaml_scalar,
)

WORKFLOWS = ("validate.yml", "resolve.yml", "refresh.yml")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def test_init_creates_valid_catalog_and_commit(tmp_path: Path) -> None:
    root = init_catalog(
        tmp_path / "cat",
        channels={"local": "file:///srv/channel", "conda-forge": "https://conda.anaconda.org/conda-forge"},
        platforms=["linux-64", "osx-arm64"],
        store="s3://bucket/envctl",
        pypi_index="http://127.0.0.1:8080/simple/",
    )
    assert root == tmp_path / "cat"
    config = parse_config(yamlio.load_path(root / "catalog.yaml"))
    assert config.version == "1"
    assert list(config.channels) == ["local", "conda-forge"]  # order is the priority
    assert config.channels["local"] == "file:///srv/channel"
    assert config.platforms == ["linux-64", "osx-arm64"]
    assert config.mutable_tags == ["latest", "candidate", "stable"]
    assert config.branch == "main"
    assert config.store == "s3://bucket/envctl"
    assert config.pypi_index == "http://127.0.0.1:8080/simple/"
    assert Catalog(WorkTreeSource(root)).config == config

    assert (root / "envs/.gitkeep").is_file() and (root / "locks/.gitkeep").is_file()
    readme = (root / "README.md").read_text()
    for words in ("envctl new", "envctl bump", "envctl tag", "What CI does", "`local`"):
        assert words in readme
    validate = yamlio.load_path(root / ".github/workflows/validate.yml")
    steps = validate["jobs"]["validate"]["steps"]
    assert any(step.get("run") == "envctl lint" for step in steps)
    resolve_text = (root / ".github/workflows/resolve.yml").read_text()
    yamlio.load(resolve_text)
    assert "envctl ci commit" in resolve_text  # tests/ci/test_workflows.py checks the schema

    assert git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(root, "log", "--format=%s").splitlines() == [INITIAL_COMMIT_MESSAGE]
    assert git(root, "status", "--porcelain") == ""
    assert set(git(root, "ls-files").split()) == {
        ".github/workflows/refresh.yml", ".github/workflows/resolve.yml",
        ".github/workflows/validate.yml", "README.md",
        "catalog.yaml", "envs/.gitkeep", "locks/.gitkeep",
    }


def test_init_defaults(tmp_path: Path) -> None:
    root = init_catalog(tmp_path / "cat")
    config = parse_config(yamlio.load_path(root / "catalog.yaml"))
    assert config.channels == {"conda-forge": "https://conda.anaconda.org/conda-forge"}
    assert config.platforms == ["linux-64"]
    assert config.store is None and config.pypi_index is None
    assert "# store: " in (root / "catalog.yaml").read_text()  # shown, commented out


def test_init_workflows_read_the_spec_from_a_repository_variable(tmp_path: Path) -> None:
    root = init_catalog(tmp_path / "cat")
    for name in WORKFLOWS:
        workflow = yamlio.load_path(root / ".github/workflows" / name)
        assert workflow["env"] == {"ENVCTL_PIP_SPEC": "${{ vars.ENVCTL_PIP_SPEC }}"}
    assert "repository variable\n`ENVCTL_PIP_SPEC`" in (root / "README.md").read_text()


@pytest.mark.parametrize("spec", [
    "git+https://github.com/acme/envctl@v0.1.0",
    "https://files.acme.example/envctl-0.1.0-py3-none-any.whl#sha256=" + "0" * 64,
    "envctl @ https://files.acme.example/envctl-0.1.0-py3-none-any.whl",
    "./dist/envctl-0.1.0-py3-none-any.whl",
])
def test_init_bakes_the_envctl_spec_into_every_workflow(spec: str, tmp_path: Path) -> None:
    root = init_catalog(tmp_path / "cat", envctl_spec=spec)
    for name in WORKFLOWS:
        workflow = yamlio.load_path(root / ".github/workflows" / name)
        assert workflow["env"] == {"ENVCTL_PIP_SPEC": spec}
        assert "vars.ENVCTL_PIP_SPEC" not in (root / ".github/workflows" / name).read_text()
    assert f"install envctl from `{spec}`" in (root / "README.md").read_text()


@pytest.mark.parametrize("spec", [
    "envctl", "envctl==0.1.0", "envctl[s3]>=0.1", " ", "",
    "--index-url=https://evil.example/simple/",
    "git+https://github.com/acme/envctl@${{ secrets.ENVCTL_CI_SIGNING_KEY }}",
    "https://a.example/x.whl\nrm -rf /",
])
def test_init_refuses_an_envctl_spec_pip_would_take_from_an_index(
    spec: str, tmp_path: Path
) -> None:
    with pytest.raises(EnvctlError) as excinfo:
        init_catalog(tmp_path / "cat", envctl_spec=spec)
    assert excinfo.value.rule == "invalid-option"
    assert "git+https://github.com/ORG/envctl@v0.1.0" in excinfo.value.fix
    assert not (tmp_path / "cat").exists()


def test_check_envctl_spec_strips() -> None:
    assert check_envctl_spec(" git+https://x.example/envctl@v1 ") == (
        "git+https://x.example/envctl@v1")


def test_init_mutable_tags(tmp_path: Path) -> None:
    root = init_catalog(tmp_path / "cat", mutable_tags=["stable", "nightly", "dev-*", "stable"])
    config = parse_config(yamlio.load_path(root / "catalog.yaml"))
    assert config.mutable_tags == ["stable", "nightly", "dev-*"]


def test_init_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(EnvctlError) as excinfo:
        init_catalog(tmp_path)
    assert excinfo.value.rule == "not-empty"
    assert "--force" in excinfo.value.fix
    assert not (tmp_path / "catalog.yaml").exists()


def test_init_force_keeps_existing_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("our readme\n")
    (tmp_path / "notes.txt").write_text("mine")
    init_catalog(tmp_path, force=True)
    assert (tmp_path / "README.md").read_text() == "our readme\n"
    assert (tmp_path / "catalog.yaml").is_file()
    files = set(git(tmp_path, "ls-files").split())
    assert "README.md" not in files and "notes.txt" not in files
    assert "catalog.yaml" in files


def test_init_refuses_existing_catalog_even_with_force(tmp_path: Path) -> None:
    init_catalog(tmp_path / "cat")
    with pytest.raises(EnvctlError) as excinfo:
        init_catalog(tmp_path / "cat", force=True)
    assert excinfo.value.rule == "already-a-catalog"


def test_init_invalid_platform_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(EnvctlError) as excinfo:
        init_catalog(tmp_path / "cat", platforms=["linux-32"])
    assert excinfo.value.rule == "schema"
    assert "linux-32" in excinfo.value.message
    assert not (tmp_path / "cat").exists()


def test_init_without_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tuseConfigOnly = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    root = init_catalog(tmp_path / "cat")
    assert git(root, "log", "--format=%an <%ae>").strip() == "envctl init <envctl@localhost>"


@pytest.mark.parametrize("text", ["conda-forge", "=https://x", "name=", ""])
def test_parse_channel_option_refuses(text: str) -> None:
    with pytest.raises(EnvctlError) as excinfo:
        parse_channel_option(text)
    assert excinfo.value.rule == "invalid-option"


def test_parse_channel_option() -> None:
    assert parse_channel_option("cf=https://a/b?x=1") == ("cf", "https://a/b?x=1")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("linux-64", "linux-64"),
        ("file:///srv/channel", "file:///srv/channel"),
        ("no", '"no"'),
        ("1.10", '"1.10"'),
        ("a b", '"a b"'),
        ("end:", '"end:"'),
        ("#x", '"#x"'),
    ],
)
def test_yaml_scalar(value: str, text: str) -> None:
    assert yaml_scalar(value) == text
    assert yamlio.load(f"k: {text}\n")["k"] == value


def test_init_signer_lands_in_allowed_signers(tmp_path: Path) -> None:
    from envctl.scaffold import parse_signer_option

    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f", str(tmp_path / "ci")],
        check=True,
    )
    principal, key = parse_signer_option(f"ci@example.com={tmp_path / 'ci.pub'}")
    root = init_catalog(tmp_path / "cat", signers={principal: key})
    config = parse_config(yamlio.load_path(root / "catalog.yaml"))
    assert config.signer_keys() == {"ci@example.com": (tmp_path / "ci.pub").read_text().strip()}


@pytest.mark.parametrize("text", ["no-equals", "=key.pub", "ci@example.com=/nonexistent.pub"])
def test_parse_signer_option_refuses(text: str) -> None:
    from envctl.scaffold import parse_signer_option

    with pytest.raises(EnvctlError) as excinfo:
        parse_signer_option(text)
    assert excinfo.value.rule == "invalid-option"
    assert excinfo.value.fix
