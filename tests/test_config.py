"""catalog.yaml: defaults, refusals with file:line, mutability patterns, virtual packages."""

from __future__ import annotations

import pytest

from envctl import yamlio
from envctl.config import (
    DEFAULT_MUTABLE_TAGS,
    DEFAULT_VIRTUAL_PACKAGES,
    CatalogConfig,
    parse_config,
)
from envctl.errors import CatalogError, EnvctlError, MultipleErrors


def load(text: str) -> CatalogConfig:
    return parse_config(yamlio.load(text, file="catalog.yaml"))


def errors_of(text: str) -> list[EnvctlError]:
    with pytest.raises(EnvctlError) as info:
        load(text)
    exc = info.value
    return list(exc.errors) if isinstance(exc, MultipleErrors) else [exc]


def test_defaults() -> None:
    config = load("channels:\n  conda-forge: https://conda.anaconda.org/conda-forge\n")
    assert config.version == "1"
    assert config.platforms == ["linux-64"]
    assert config.mutable_tags == list(DEFAULT_MUTABLE_TAGS) == ["latest", "candidate", "stable"]
    assert config.branch == "main"
    assert config.store is None
    assert config.pypi_index is None
    assert config.pypi_exclude_newer is True
    assert config.allowed_signers == []
    assert config.effective_default_channels == ["conda-forge"]


def test_channel_order_is_the_default_priority() -> None:
    config = load("channels:\n  b: https://b\n  a: https://a\n")
    assert config.effective_default_channels == ["b", "a"]
    config = load("channels:\n  b: https://b\n  a: https://a\ndefault_channels: [a]\n")
    assert config.effective_default_channels == ["a"]


def test_mutable_patterns() -> None:
    config = load('mutable_tags: [latest, stable, "dev-*"]\n')
    assert config.is_mutable("latest")
    assert config.is_mutable("dev-alice")
    assert not config.is_mutable("v1")
    assert not config.is_mutable("candidate")  # the catalog's list replaces the default
    assert not config.is_mutable("Dev-alice")  # case-sensitive


def test_virtual_packages_overlay_defaults() -> None:
    config = load("platforms: [linux-64]\nvirtual_packages:\n  linux-64:\n    __cuda: '12.0'\n")
    merged = config.virtual_packages_for("linux-64")
    assert merged["__cuda"] == "12.0"
    assert merged["__glibc"] == DEFAULT_VIRTUAL_PACKAGES["linux-64"]["__glibc"]
    assert config.virtual_packages_for("osx-arm64") == DEFAULT_VIRTUAL_PACKAGES["osx-arm64"]


def test_all_strings_no_retyping() -> None:
    # YAML 1.1 would read version 1 as an int and 'no' as False; the loader keeps strings.
    config = load("version: 1\nbranch: no\n")
    assert config.version == "1"
    assert config.branch == "no"


@pytest.mark.parametrize(
    ("text", "line", "part"),
    [
        ("channels: {}\ncolour: red\n", 2, "colour: unknown key"),
        ("version: '2'\n", 1, "version '2' is not supported"),
        ("platforms: [linux-64, amiga-68k]\n", 1, "unknown platform 'amiga-68k'"),
        ("channels:\n  'a::b': https://x\n", 1, "must be a simple word"),
        ("channels:\n  a: https://a\ndefault_channels: [b]\n", 1, "default channel 'b'"),
        ("virtual_packages:\n  linux-64:\n    cuda: '12'\n", 1, "must start with '__'"),
        (
            "allowed_signers:\n  - principal: ci\n    key: not-a-key\n",
            3,
            "key must be an SSH public key line",
        ),
    ],
)
def test_refusals_name_file_and_line(text: str, line: int, part: str) -> None:
    (error,) = errors_of(text)
    assert isinstance(error, CatalogError)
    assert error.file == "catalog.yaml"
    assert error.line == line
    assert error.rule == "schema"
    assert part in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("false", False), ("true", True), ("False", False), ("TRUE", True), ('"false"', False)],
)
def test_pypi_exclude_newer(text: str, expected: bool) -> None:
    assert load(f"pypi_exclude_newer: {text}\n").pypi_exclude_newer is expected


@pytest.mark.parametrize(
    ("value", "part"),
    [
        # YAML 1.1 reads these as booleans, YAML 1.2 as strings: neither is guessed.
        ("no", "must be true or false, not 'no'"),
        ("off", "must be true or false, not 'off'"),
        ("0", "must be true or false, not '0'"),
        ("[false]", "must be true or false"),
        ("{a: b}", "must be true or false"),
        ("~", "must be true or false"),
    ],
)
def test_pypi_exclude_newer_refusals(value: str, part: str) -> None:
    (error,) = errors_of(f"branch: main\npypi_exclude_newer: {value}\n")
    assert isinstance(error, CatalogError)
    assert (error.file, error.line, error.rule) == ("catalog.yaml", 2, "schema")
    assert error.message == f"pypi_exclude_newer: {part}"


def test_every_problem_is_reported() -> None:
    errors = errors_of("colour: red\nbranch: [a]\nplatforms: [amiga]\n")
    assert sorted((e.line, e.message.split(":")[0]) for e in errors) == [
        (1, "colour"), (2, "branch"), (3, "platforms.0"),
    ]


def test_models_are_frozen() -> None:
    config = load("branch: main\n")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        config.branch = "dev"  # type: ignore[misc]
