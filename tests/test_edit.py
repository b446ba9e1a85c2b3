"""envctl.edit: round-trip edits of environment files (new, tag, bump)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl import yamlio
from envctl.edit import (
    Indent,
    bump,
    detect_indent,
    needs_quotes,
    new_tag,
    read_environment_yml,
    set_pointer,
)
from envctl.errors import EnvctlError
from envctl.spec import ConcreteTag, PointerTag, parse_env_file

CATALOG_YAML = """\
version: "1"
channels:
  conda-forge: https://conda.anaconda.org/conda-forge
  local: file:///srv/channel
platforms: [linux-64, osx-arm64]
mutable_tags: [latest, candidate, stable]
branch: main
"""

COMMENTED = """\
# Ranking team's base environment.
# Owned by ranking; see the catalog README.

description: Data science base   # shown in 'envctl list'
owners: [ranking]

tags:
  v1:
    channels: [conda-forge]        # logical names
    dependencies:
      - python=3.11   # pinned minor
      - numpy>=1.26
      - pandas

  v2:
    extends: v1
    dependencies: [scikit-learn]   # on top of v1

  stable: {points_to: v1}          # moved by release
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    path = tmp_path / "catalog"
    (path / "envs").mkdir(parents=True)
    (path / "locks").mkdir()
    (path / "catalog.yaml").write_text(CATALOG_YAML)
    return path


def write_env(root: Path, name: str, text: str) -> Path:
    path = root / "envs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_env(path: Path):
    return parse_env_file(yamlio.load_path(path), file=str(path))


def refusal(excinfo: pytest.ExceptionInfo[EnvctlError]) -> str:
    return excinfo.value.rule


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("1.10", True), ("no", True), ("on", True), ("yes", True), ("~", True), ("", True),
        ("y", True), ("1e3", True), ("0o17", True), ("2024-01-01", True), ("1_000", True),
        ("v1", False), ("stable", False), ("python=3.11", False), ("numpy>=1.26", False),
    ],
)
def test_needs_quotes(text: str, quoted: bool) -> None:
    assert needs_quotes(text) is quoted


@pytest.mark.parametrize(
    ("text", "indent"),
    [
        ("a: 1\n", Indent(2, 4, 2)),
        ("tags:\n  v1:\n    dependencies:\n      - numpy\n", Indent(2, 4, 2)),
        ("tags:\n    v1:\n        dependencies:\n        - numpy\n", Indent(4, 2, 0)),
        ("owners:\n- a\ntags:\n  v1:\n    x: 1\n", Indent(2, 2, 0)),
        ("# c\ntags:  # c\n   v1: {}\n", Indent(3, 5, 3)),
    ],
)
def test_detect_indent(text: str, indent: Indent) -> None:
    assert detect_indent(text) == indent


# --------------------------------------------------------------------------- new


def test_new_creates_file(root: Path) -> None:
    path = new_tag(
        root, "ranking/base:v1", deps=["python=3.11", "numpy >=1.26"], pypi=["Requests==2.32.3"],
        description="Ranking base", owners=["ranking", "ml"],
    )
    assert path == root / "envs/ranking/base.yaml"
    assert path.read_text() == (
        "description: Ranking base\n"
        "owners:\n"
        "  - ranking\n"
        "  - ml\n"
        "tags:\n"
        "  v1:\n"
        "    dependencies:\n"
        "      - python=3.11\n"
        "      - numpy >=1.26\n"  # written as given, not normalised
        "    pypi:\n"
        "      - Requests==2.32.3\n"
    )
    env = load_env(path)
    assert env.owners == ["ranking", "ml"]
    assert isinstance(env.tags["v1"], ConcreteTag)


def test_new_second_tag_with_channels_platforms_and_tag_description(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    path = new_tag(
        root, "team/env:2024.06", deps=["numpy"], channels=["local", "conda-forge"],
        platforms=["linux-64"], description="June",
    )
    env = load_env(path)
    spec = env.tags["2024.06"]
    assert isinstance(spec, ConcreteTag)
    assert spec.channels == ["local", "conda-forge"]
    assert spec.platforms == ["linux-64"]
    assert spec.description == "June"
    assert '  "2024.06":\n' in path.read_text()


def test_new_existing_tag_refused(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v1", deps=["pandas"])
    assert refusal(excinfo) == "tag-exists"
    assert excinfo.value.fix == "use 'envctl bump team/env:v1 --to NEWTAG'"
    assert excinfo.value.file == "envs/team/env.yaml"


@pytest.mark.parametrize("tag", ["v1_0", "v1-0", "v1--0"])
def test_new_near_duplicate_tag(root: Path, tag: str) -> None:
    new_tag(root, "team/env:v1.0", deps=["numpy"])
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, f"team/env:{tag}", deps=["numpy"])
    assert refusal(excinfo) == "near-duplicate"
    assert "'v1.0'" in excinfo.value.fix


def test_new_near_duplicate_env_name(root: Path) -> None:
    new_tag(root, "team/my-env:v1", deps=["numpy"])
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/my_env:v1", deps=["numpy"])
    assert refusal(excinfo) == "near-duplicate"
    assert "team/my-env" in excinfo.value.fix
    assert not (root / "envs/team/my_env.yaml").exists()


def test_new_path_clashes(root: Path) -> None:
    (root / "envs/team").write_text("not a folder")
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v1", deps=["numpy"])
    assert refusal(excinfo) == "path-clash"
    (root / "envs/team").unlink()
    write_env(root, "team/env", "")
    (root / "envs/team/env.yaml").rename(root / "envs/team/env.yml")
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v1", deps=["numpy"])
    assert refusal(excinfo) == "path-clash"
    assert "rename it to envs/team/env.yaml" in excinfo.value.fix


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"deps": ["numpy >>= 1"]}, "invalid-requirement"),
        ({"deps": ["other::numpy"]}, "unknown-channel"),
        ({"deps": ["numpy"], "pypi": ["requests ==="]}, "invalid-requirement"),
        ({"deps": ["numpy"], "channels": ["bioconda"]}, "unknown-channel"),
        ({"deps": ["numpy"], "platforms": ["linux-32"]}, "unknown-platform"),
        ({}, "empty-tag"),
    ],
)
def test_new_validates_input(root: Path, kwargs: dict, rule: str) -> None:
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v1", **kwargs)
    assert refusal(excinfo) == rule
    assert excinfo.value.tag == "v1"
    assert not (root / "envs/team").exists()


def test_new_channel_qualified_dep_is_checked_against_catalog(root: Path) -> None:
    path = new_tag(root, "team/env:v1", deps=["local::tinynum"])
    assert "local::tinynum" in path.read_text()


def test_new_needs_explicit_tag(root: Path) -> None:
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env", deps=["numpy"])
    assert refusal(excinfo) == "missing-tag"


def test_new_owners_on_existing_env_refused(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"], owners=["a"])
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v2", deps=["numpy"], owners=["b"])
    assert refusal(excinfo) == "owners-existing"


def test_new_rolling_spec_on_mutable_tag(root: Path) -> None:
    path = new_tag(root, "team/env:latest", deps=["numpy"])
    assert isinstance(load_env(path).tags["latest"], ConcreteTag)


def test_new_refuses_to_edit_a_broken_file(root: Path) -> None:
    write_env(root, "team/env", "tags:\n  v1:\n    dependencies: [numpy]\n    colour: red\n")
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v2", deps=["numpy"])
    assert refusal(excinfo) == "schema"
    assert excinfo.value.line == 4


# --------------------------------------------------------------------------- environment.yml

ENVIRONMENT_YML = """\
name: ranking
channels:
  - conda-forge
  - file:///srv/channel/
  - nodefaults
dependencies:
  - python=3.11
  - numpy>=1.26
  - pip
  - pip:
      - itsdangerous==2.1.2
      - requests>=2
"""


def test_read_environment_yml(root: Path, tmp_path: Path) -> None:
    from envctl.catalog import Catalog, WorkTreeSource

    source = tmp_path / "environment.yml"
    source.write_text(ENVIRONMENT_YML)
    config = Catalog(WorkTreeSource(root)).config
    imported = read_environment_yml(source, config)
    assert imported.channels == ("conda-forge", "local")
    assert imported.dependencies == ("python=3.11", "numpy>=1.26", "pip")
    assert imported.pypi == ("itsdangerous==2.1.2", "requests>=2")


def test_new_from_environment_yml(root: Path, tmp_path: Path) -> None:
    source = tmp_path / "environment.yml"
    source.write_text(ENVIRONMENT_YML)
    path = new_tag(root, "ranking/base:v1", from_file=source, deps=["pandas"])
    spec = load_env(path).tags["v1"]
    assert isinstance(spec, ConcreteTag)
    assert spec.channels == ["conda-forge", "local"]
    assert spec.dependencies == ["python=3.11", "numpy>=1.26", "pip", "pandas"]
    assert spec.pypi == ["itsdangerous==2.1.2", "requests>=2"]


@pytest.mark.parametrize(
    ("text", "rule", "line"),
    [
        ("channels: [bioconda]\ndependencies: [numpy]\n", "unknown-channel", 1),
        ("channels:\n  - conda-forge\n  - defaults\ndependencies: [numpy]\n",
         "unknown-channel", 3),
        ("dependencies:\n  - numpy\n  - pip:\n    - -r requirements.txt\n", "unsupported-key", 3),
        ("variables: {A: b}\ndependencies: [numpy]\n", "unsupported-key", 1),
        ("dependencies:\n  - {conda: numpy}\n", "schema", 2),
    ],
)
def test_environment_yml_refusals(
    root: Path, tmp_path: Path, text: str, rule: str, line: int
) -> None:
    source = tmp_path / "environment.yml"
    source.write_text(text)
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "team/env:v1", from_file=source)
    assert refusal(excinfo) == rule
    assert excinfo.value.file == str(source)
    assert excinfo.value.line == line


# --------------------------------------------------------------------------- pointers


def test_set_pointer_creates_moves_and_keeps(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    new_tag(root, "team/env:v2", deps=["numpy>=2"])
    assert set_pointer(root, "team/env:stable", "v1") == (None, "v1")
    path = root / "envs/team/env.yaml"
    assert path.read_text().endswith("  stable:\n    points_to: v1\n")
    assert set_pointer(root, "team/env:stable", "v2") == ("v1", "v2")
    before = path.stat().st_mtime_ns
    assert set_pointer(root, "team/env:stable", "v2") == ("v2", "v2")
    assert path.stat().st_mtime_ns == before
    spec = load_env(path).tags["stable"]
    assert isinstance(spec, PointerTag) and spec.points_to == "v2"


@pytest.mark.parametrize(
    ("pointer", "target", "rule"),
    [
        ("v3", "v1", "immutable-tag"),
        ("stable", "v9", "missing-target"),
        ("candidate", "stable", "pointer-chain"),
        ("candidate", "latest", "mutable-target"),
        ("latest", "old", "retired-target"),
        ("latest", "v1", "not-a-pointer"),
    ],
)
def test_set_pointer_refusals(root: Path, pointer: str, target: str, rule: str) -> None:
    write_env(
        root, "team/env",
        "tags:\n"
        "  old: {dependencies: [numpy], retired: broken}\n"
        "  v1: {dependencies: [numpy]}\n"
        "  stable: {points_to: v1}\n",
    )
    new_tag(root, "team/env:latest", deps=["numpy"])  # a rolling spec
    before = (root / "envs/team/env.yaml").read_bytes()
    with pytest.raises(EnvctlError) as excinfo:
        set_pointer(root, f"team/env:{pointer}", target)
    assert refusal(excinfo) == rule
    assert (root / "envs/team/env.yaml").read_bytes() == before


def test_set_pointer_immutable_fix_text(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    with pytest.raises(EnvctlError) as excinfo:
        set_pointer(root, "team/env:prod", "v1")
    assert excinfo.value.fix == (
        "pointers must be mutable tags such as stable; add the pattern to mutable_tags"
    )


def test_set_pointer_unknown_env(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    with pytest.raises(EnvctlError) as excinfo:
        set_pointer(root, "team/envv:stable", "v1")
    assert refusal(excinfo) == "not-found"
    assert "team/env" in excinfo.value.fix


# --------------------------------------------------------------------------- bump


def test_bump_replaces_adds_drops_and_moves(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["python=3.11", "numpy>=1.26", "pandas"],
            pypi=["itsdangerous==2.1.2"])
    set_pointer(root, "team/env:stable", "v1")
    result = bump(
        root, "team/env:v1", "v2", deps=["numpy>=2", "scipy"], drop=["pandas"],
        pypi=["ItsDangerous==2.2.0"], move=["stable", "candidate"],
    )
    assert result.source == "team/env:v1"
    assert result.new == "team/env:v2"
    assert result.replaced == (("numpy>=1.26", "numpy>=2"),
                               ("itsdangerous==2.1.2", "ItsDangerous==2.2.0"))
    assert result.added == ("scipy",)
    assert result.dropped == ("pandas",)
    assert [(m.tag, m.old, m.new) for m in result.moved] == [
        ("stable", "v1", "v2"), ("candidate", None, "v2"),
    ]
    env = load_env(result.file)
    v2 = env.tags["v2"]
    assert isinstance(v2, ConcreteTag)
    assert v2.dependencies == ["python=3.11", "numpy>=2", "scipy"]
    assert v2.pypi == ["ItsDangerous==2.2.0"]
    assert env.tags["stable"] == PointerTag(points_to="v2")
    assert env.tags["candidate"] == PointerTag(points_to="v2")
    assert env.tags["v1"].dependencies == ["python=3.11", "numpy>=1.26", "pandas"]


def test_bump_matches_by_package_name_not_text(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["conda-forge::numpy >=1.26,<2", "numpy-financial"])
    result = bump(root, "team/env:v1", "v2", deps=["numpy 2.*"], drop=["NumPy-Financial"])
    assert result.replaced == (("conda-forge::numpy >=1.26,<2", "numpy 2.*"),)
    assert result.dropped == ("numpy-financial",)


def test_bump_from_pointer_keeps_extends(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["python=3.11"])
    write_env(
        root, "team/env",
        (root / "envs/team/env.yaml").read_text()
        + "  v2:\n    extends: v1\n    platforms: [linux-64]\n    dependencies: [numpy]\n"
        + "  stable: {points_to: v2}\n",
    )
    result = bump(root, "team/env:stable", "v3", deps=["numpy>=2"], move=["stable"])
    assert result.source == "team/env:v2"
    v3 = load_env(result.file).tags["v3"]
    assert isinstance(v3, ConcreteTag)
    assert v3.extends == "v1"
    assert v3.platforms == ["linux-64"]
    assert v3.dependencies == ["numpy>=2"]


@pytest.mark.parametrize(
    ("to", "kwargs", "rule"),
    [
        ("v1", {}, "tag-exists"),
                ("v1-0", {}, "near-duplicate"),
        ("stable", {}, "mutable-bump"),
        ("v2", {"drop": ["scipy"]}, "not-found"),
        ("v2", {"drop": ["numpy"]}, "empty-tag"),
        ("v2", {"move": ["v1.0"]}, "immutable-tag"),
        ("v2", {"deps": ["numpy >>= 2"]}, "invalid-requirement"),
    ],
)
def test_bump_refusals(root: Path, to: str, kwargs: dict, rule: str) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    new_tag(root, "team/env:v1_0", deps=["numpy"])
    before = (root / "envs/team/env.yaml").read_bytes()
    with pytest.raises(EnvctlError) as excinfo:
        bump(root, "team/env:v1", to, **kwargs)
    assert refusal(excinfo) == rule
    assert (root / "envs/team/env.yaml").read_bytes() == before


def test_bump_unknown_source_tag(root: Path) -> None:
    new_tag(root, "team/env:v1", deps=["numpy"])
    with pytest.raises(EnvctlError) as excinfo:
        bump(root, "team/env:v9", "v2")
    assert refusal(excinfo) == "not-found"


# --------------------------------------------------------------------------- round trip


def test_round_trip_new_keeps_every_byte(root: Path) -> None:
    path = write_env(root, "ranking/base", COMMENTED)
    new_tag(root, "ranking/base:v3", deps=["python=3.12", "numpy"])
    assert path.read_text() == COMMENTED + (
        "\n"
        "  v3:\n"
        "    dependencies:\n"
        "      - python=3.12\n"
        "      - numpy\n"
    )


def test_round_trip_tag_changes_one_line(root: Path) -> None:
    path = write_env(root, "ranking/base", COMMENTED)
    assert set_pointer(root, "ranking/base:stable", "v2") == ("v1", "v2")
    assert path.read_text() == COMMENTED.replace(
        "  stable: {points_to: v1}          # moved by release",
        "  stable: {points_to: v2}          # moved by release",
    )


def test_round_trip_bump(root: Path) -> None:
    path = write_env(root, "ranking/base", COMMENTED)
    bump(root, "ranking/base:v2", "v3", deps=["scikit-learn=1.5"], move=["stable"])
    assert path.read_text() == COMMENTED.replace(
        "{points_to: v1}", "{points_to: v3}"
    ) + (
        "\n"
        "  v3:\n"
        "    extends: v1\n"
        "    dependencies:\n"
        "      - scikit-learn=1.5\n"
    )


def test_round_trip_other_indentation_and_document_start(root: Path) -> None:
    text = (
        "# env\n"
        "---\n"
        "tags:\n"
        "    v1:\n"
        "        dependencies:\n"
        "        - numpy   # first\n"
        "        - 'pandas'\n"
    )
    path = write_env(root, "team/env", text)
    new_tag(root, "team/env:v2", deps=["numpy"], platforms=["linux-64"])
    assert path.read_text() == text + (
        "    v2:\n"
        "        platforms:\n"
        "        - linux-64\n"
        "        dependencies:\n"
        "        - numpy\n"
    )


def test_round_trip_crlf(root: Path) -> None:
    path = root / "envs/team/env.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tags:\r\n  v1:\r\n    dependencies: [numpy]  # x\r\n")
    set_pointer(root, "team/env:stable", "v1")
    assert path.read_bytes() == (
        b"tags:\r\n  v1:\r\n    dependencies: [numpy]  # x\r\n"
        b"  stable:\r\n    points_to: v1\r\n"
    )


def test_numeric_looking_tags_stay_strings(root: Path) -> None:
    text = (
        "tags:\n"
        "  1.10:\n"
        "    dependencies: [python=3.11]\n"
        "  stable: {points_to: 1.10}\n"
    )
    path = write_env(root, "team/env", text)
    bump(root, "team/env:stable", "1.11", move=["stable"])
    new_tag(root, "team/env:2.0", deps=["numpy"])
    assert path.read_text() == (
        "tags:\n"
        "  1.10:\n"
        "    dependencies: [python=3.11]\n"
        '  stable: {points_to: "1.11"}\n'
        '  "1.11":\n'
        "    dependencies:\n"
        "      - python=3.11\n"
        '  "2.0":\n'
        "    dependencies:\n"
        "      - numpy\n"
    )
    data = yamlio.load_path(path)
    assert list(data["tags"]) == ["1.10", "stable", "1.11", "2.0"]
    assert data["tags"]["stable"]["points_to"] == "1.11"
    import yaml  # a YAML 1.1 reader sees the new ones as strings too

    plain = yaml.safe_load(path.read_text())
    assert "1.11" in plain["tags"] and "2.0" in plain["tags"]


def test_yaml_11_words_are_quoted(root: Path) -> None:
    path = new_tag(root, "team/env:no", deps=["numpy"], description="on")
    text = path.read_text()
    assert 'description: "on"\n' in text
    assert '  "no":\n' in text
    assert yamlio.load(text)["tags"].keys() == {"no"}


# --------------------------------------------------------------------------- extends


def test_new_tag_extends_same_env_writes_only_the_additions(root: Path) -> None:
    path = write_env(root, "ranking/base", COMMENTED)
    new_tag(root, "ranking/base:v3", deps=["scipy"], extends="v1")
    spec = load_env(path).tags["v3"]
    assert isinstance(spec, ConcreteTag)
    assert spec.extends == "v1"
    assert spec.dependencies == ["scipy"]
    # Inherited, not copied: the base's channels and platforms stay the base's business.
    assert spec.channels is None and spec.platforms is None
    assert path.read_text().startswith(COMMENTED)


def test_new_tag_extends_another_env(root: Path) -> None:
    write_env(root, "ranking/base", COMMENTED)
    path = new_tag(root, "ranking/train:v1", deps=["libalpha"], extends="ranking/base:v1")
    spec = load_env(root / path).tags["v1"]
    assert isinstance(spec, ConcreteTag)
    assert spec.extends == "ranking/base:v1"


@pytest.mark.parametrize(
    ("extends", "kwargs", "rule"),
    [
        ("v9", {}, "not-found"),
        ("stable", {}, "extends-pointer"),
        ("v1", {"channels": ["local"]}, "extends-inherits"),
        ("v1", {"platforms": ["linux-64"]}, "extends-inherits"),
    ],
)
def test_new_tag_extends_refusals(
    root: Path, extends: str, kwargs: dict[str, list[str]], rule: str
) -> None:
    path = write_env(root, "ranking/base", COMMENTED)
    with pytest.raises(EnvctlError) as excinfo:
        new_tag(root, "ranking/base:v3", deps=["scipy"], extends=extends, **kwargs)
    assert refusal(excinfo) == rule
    assert excinfo.value.fix
    assert path.read_text() == COMMENTED  # nothing written on refusal
