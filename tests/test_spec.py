"""Environment files, normalisation, extends inheritance, per-platform requests and pinned ids.

Any change to a pinned id below is a breaking change for every consumer that recorded one.
"""

from __future__ import annotations

import pytest

from envctl import yamlio
from envctl.config import CatalogConfig
from envctl.errors import CatalogError, EnvctlError, MultipleErrors, NotFoundError
from envctl.names import Alias, parse_alias
from envctl.spec import (
    ConcreteTag,
    EffectiveSpec,
    EnvFile,
    PointerTag,
    Target,
    build_request,
    effective_spec,
    env_type,
    normalize_conda_spec,
    normalize_pypi_requirement,
    parse_env_file,
    pypi_exclude_newer,
)

CONFIG = CatalogConfig(
    channels={"conda-forge": "https://cf.example", "bioconda": "https://bc.example"},
    platforms=["linux-64", "osx-arm64"],
)
EXCLUDE_NEWER = "2024-01-01T00:00:00Z"


def env_file(text: str, file: str = "envs/team/env.yaml") -> EnvFile:
    return parse_env_file(yamlio.load(text, file=file), file=file)


def errors_of(text: str) -> list[EnvctlError]:
    with pytest.raises(EnvctlError) as info:
        env_file(text)
    exc = info.value
    return list(exc.errors) if isinstance(exc, MultipleErrors) else [exc]


def spec(
    channels: list[str],
    deps: list[str],
    pypi: list[str] = (),  # type: ignore[assignment]
    target: dict[str, Target] | None = None,
) -> EffectiveSpec:
    return EffectiveSpec(
        alias="team/env:v1",
        channels=channels,
        platforms=["linux-64", "osx-arm64"],
        dependencies=deps,
        pypi=list(pypi),
        target=target or {},
        virtual_packages={},
        pypi_options=None,
    )


# -- normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python=3.11", "python 3.11.*"),
        ("numpy>=1.26", "numpy >=1.26"),
        ("  numpy >=1.26,<2 ", "numpy >=1.26,<2"),
        ("pandas", "pandas"),
        ("conda-forge::numpy", "conda-forge::numpy"),
    ],
)
def test_normalize_conda_spec(text: str, expected: str) -> None:
    assert normalize_conda_spec(text, channels=["conda-forge"]) == expected


def test_normalize_conda_spec_refusals() -> None:
    with pytest.raises(CatalogError) as info:
        normalize_conda_spec("numpy >=>=1", channels=["conda-forge"])
    assert info.value.rule == "invalid-requirement"
    with pytest.raises(CatalogError) as info:
        normalize_conda_spec("internal::numpy", channels=["conda-forge"])
    assert info.value.rule == "unknown-channel"
    assert "use one of: conda-forge" in (info.value.fix or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("itsdangerous==2.1.2", "itsdangerous==2.1.2"),
        ("Its_Dangerous == 2.1.2", "its-dangerous==2.1.2"),
        ("requests[socks,Security]>=2", "requests[security,socks]>=2"),
        ('tomli; python_version < "3.11"', 'tomli; python_version < "3.11"'),
    ],
)
def test_normalize_pypi_requirement(text: str, expected: str) -> None:
    assert normalize_pypi_requirement(text) == expected


def test_normalize_pypi_refusal() -> None:
    with pytest.raises(CatalogError) as info:
        normalize_pypi_requirement("not a requirement ===")
    assert info.value.rule == "invalid-requirement"


# -- the file model ---------------------------------------------------------------------


def test_concrete_and_pointer_tags() -> None:
    env = env_file(
        "description: d\nowners: [a]\ntags:\n"
        "  v1:\n    dependencies: [numpy]\n"
        "  stable: {points_to: v1}\n"
    )
    assert isinstance(env.tags["v1"], ConcreteTag)
    assert isinstance(env.tags["stable"], PointerTag)
    assert env.tags["stable"].points_to == "v1"
    assert list(env.tags) == ["v1", "stable"]  # file order is kept


def test_schema_errors_have_lines() -> None:
    errors = errors_of(
        "tags:\n"
        "  V1:\n"  # 2: bad tag name
        "    dependencies: [numpy]\n"
        "  v2:\n"
        "    extends: Team/Env:v1\n"  # 5: bad extends
        "    dependencies: [numpy, [x]]\n"  # 6: not a string
        "  v3:\n"
        "    points_to: v1\n"
        "    colour: red\n"  # 9: unknown key
    )
    found = sorted((e.line, e.message.split(":")[0]) for e in errors)
    assert found == [
        (2, "tags.V1"),
        (5, "tags.v2.extends"),
        (6, "tags.v2.dependencies.1"),
        (9, "tags.v3.colour"),
    ]
    assert all(e.file == "envs/team/env.yaml" and e.rule == "schema" for e in errors)
    by_line = {e.line: e.message for e in errors}
    assert by_line[2] == (
        'tags.V1: "V1" has upper case; tags are lower case: did you mean "v1"? (use "v1")'
    )


def test_empty_tag_and_no_tags() -> None:
    (error,) = errors_of("tags:\n  v1:\n")
    assert (error.line, error.tag, error.rule) == (2, "v1", "schema")
    (error,) = errors_of("tags: {}\n")
    assert "at least one tag" in error.message


def test_duplicate_channels_refused() -> None:
    (error,) = errors_of("tags:\n  v1:\n    channels: [a, a]\n    dependencies: [x]\n")
    assert "listed twice: a" in error.message


# -- extends ----------------------------------------------------------------------------


def lookup_from(files: dict[str, str]):
    envs = {name: env_file(text, f"envs/{name}.yaml") for name, text in files.items()}

    def lookup(alias: Alias) -> ConcreteTag | PointerTag:
        return envs[str(alias.name)].tags[alias.tag]

    return lookup


def test_extends_inherits_channels_and_platforms_not_dependencies() -> None:
    lookup = lookup_from({
        "team/env": "tags:\n"
        "  v1:\n    channels: [bioconda]\n    platforms: [osx-arm64]\n"
        "    dependencies: [python=3.11, numpy]\n    pypi: [rich]\n"
        "  v2:\n    extends: v1\n    dependencies: [pandas]\n",
    })
    eff = effective_spec(parse_alias("team/env:v2"), lookup, CONFIG)
    assert eff.channels == ["bioconda"]
    assert eff.platforms == ["osx-arm64"]
    assert eff.dependencies == ["pandas"]  # the base's lock is pinned, not re-requested
    assert eff.pypi == []
    assert eff.base == "team/env:v1"


def test_extends_another_env_and_overrides() -> None:
    lookup = lookup_from({
        "team/base": "tags:\n  v3:\n    channels: [bioconda]\n    dependencies: [python]\n",
        "team/env": "tags:\n  v1:\n    extends: team/base:v3\n"
        "    channels: [conda-forge, bioconda]\n    dependencies: [numpy]\n",
    })
    eff = effective_spec(parse_alias("team/env:v1"), lookup, CONFIG)
    assert eff.channels == ["conda-forge", "bioconda"]
    assert eff.platforms == ["linux-64", "osx-arm64"]  # catalog default
    assert eff.base == "team/base:v3"


def test_defaults_without_extends() -> None:
    lookup = lookup_from({"team/env": "tags:\n  v1:\n    dependencies: [numpy]\n"})
    eff = effective_spec(parse_alias("team/env:v1"), lookup, CONFIG)
    assert eff.channels == ["conda-forge", "bioconda"]
    assert eff.platforms == ["linux-64", "osx-arm64"]
    assert eff.base is None


def test_extends_cycle_and_pointer_refused() -> None:
    lookup = lookup_from({
        "team/env": "tags:\n"
        "  v1:\n    extends: v2\n    dependencies: [a]\n"
        "  v2:\n    extends: v1\n    dependencies: [b]\n"
        "  v3:\n    extends: stable\n    dependencies: [c]\n"
        "  stable: {points_to: v1}\n",
    })
    with pytest.raises(CatalogError) as info:
        effective_spec(parse_alias("team/env:v1"), lookup, CONFIG)
    assert info.value.rule == "extends-cycle"
    with pytest.raises(CatalogError) as info:
        effective_spec(parse_alias("team/env:v3"), lookup, CONFIG)
    assert info.value.rule == "extends-pointer"
    assert "v1" in (info.value.fix or "")


# -- requests and ids -------------------------------------------------------------------


def test_target_dependencies_per_platform() -> None:
    eff = spec(
        ["conda-forge"], ["numpy"],
        target={"linux-64": Target(dependencies=["libgcc"], pypi=["uvloop"])},
    )
    linux = build_request(eff, "linux-64", CONFIG)
    mac = build_request(eff, "osx-arm64", CONFIG)
    assert linux.dependencies == ["libgcc", "numpy"]
    assert linux.pypi == ["uvloop"]
    assert mac.dependencies == ["numpy"]
    assert mac.pypi == []
    assert linux.virtual_packages["__glibc"] == "2.17"
    assert "__osx" in mac.virtual_packages


def test_pypi_options_exclude_newer_overrides_the_catalog_and_is_inherited() -> None:
    lookup = lookup_from({
        "team/env": "tags:\n"
        "  v1:\n    dependencies: [python]\n"
        "    pypi_options: {index_url: 'https://old.example/simple', exclude_newer: false}\n"
        "  v2:\n    extends: v1\n    pypi: [rich]\n"
        "  v3:\n    dependencies: [python]\n    pypi_options: {exclude_newer: true}\n"
        "  v4:\n    dependencies: [python]\n    pypi_options: {find_links: [wheels]}\n"
        "  v5:\n    dependencies: [python]\n",
    })
    opted_out = CatalogConfig(channels=CONFIG.channels, pypi_exclude_newer=False)
    expected = {
        # tag: (with the catalog default, with the catalog's opt-out)
        "v1": (False, False),
        "v2": (False, False),  # pypi_options come with the base, the knob with them
        "v3": (True, True),
        "v4": (True, False),  # pypi_options without the key: the catalog decides
        "v5": (True, False),
    }
    for tag, (default, catalog_false) in expected.items():
        eff = effective_spec(parse_alias(f"team/env:{tag}"), lookup, CONFIG)
        assert pypi_exclude_newer(eff.pypi_options, CONFIG) is default, tag
        assert pypi_exclude_newer(eff.pypi_options, opted_out) is catalog_false, tag


def test_pypi_options_exclude_newer_changes_no_req_id() -> None:
    text = "tags:\n  v1:\n    dependencies: [python=3.11, numpy>=1.26]\n"
    lookup = lookup_from({"team/env": text + "    pypi_options: {exclude_newer: false}\n"})
    eff = effective_spec(parse_alias("team/env:v1"), lookup, CONFIG)
    request = build_request(eff, "linux-64", CONFIG, exclude_newer=EXCLUDE_NEWER)
    plain = effective_spec(parse_alias("team/env:v1"), lookup_from({"team/env": text}), CONFIG)
    assert request == build_request(plain, "linux-64", CONFIG, exclude_newer=EXCLUDE_NEWER)
    opted_out = CatalogConfig(channels=CONFIG.channels, pypi_exclude_newer=False)
    assert request == build_request(eff, "linux-64", opted_out, exclude_newer=EXCLUDE_NEWER)


def test_pypi_options_exclude_newer_refusals_have_lines() -> None:
    errors = errors_of(
        "tags:\n"
        "  v1:\n    dependencies: [x]\n"
        "    pypi_options:\n"
        "      exclude_newer: yes\n"  # 5
        "  v2:\n    dependencies: [x]\n"
        "    pypi_options: {exclude_newer: [false]}\n"  # 8
        "  v3:\n    dependencies: [x]\n"
        "    pypi_options: {exclude_newer: '2024-01-01'}\n"  # 11
    )
    assert sorted((e.line, e.message) for e in errors) == [
        (5, "tags.v1.pypi_options.exclude_newer: must be true or false, not 'yes'"),
        (8, "tags.v2.pypi_options.exclude_newer: must be true or false"),
        (11, "tags.v3.pypi_options.exclude_newer: must be true or false, not '2024-01-01'"),
    ]
    assert all(e.file == "envs/team/env.yaml" and e.rule == "schema" for e in errors)


def test_build_request_refusals() -> None:
    with pytest.raises(NotFoundError) as info:
        build_request(spec(["conda-forge"], ["numpy"]), "win-64", CONFIG)
    assert info.value.rule == "unknown-platform"
    with pytest.raises(CatalogError) as info:
        build_request(spec(["nope"], ["numpy"]), "linux-64", CONFIG)
    assert info.value.rule == "unknown-channel"


PINNED_JSON = (
    '{"base_full_id":null,"channels":["conda-forge","bioconda"],'
    '"dependencies":["numpy >=1.26","python 3.11.*"],"exclude_newer":"2024-01-01T00:00:00Z",'
    '"platform":"linux-64","pypi":["itsdangerous==2.1.2"],"version":"1",'
    '"virtual_packages":{"__archspec":"1=x86_64","__glibc":"2.17","__linux":"5.10",'
    '"__unix":"0"}}'
)
PINNED_REQ_ID = "176a2c95969e5a00f140716894a57da27abcd047"


def pinned(channels: list[str], deps: list[str], platform: str = "linux-64", **kw: str) -> str:
    eff = spec(channels, deps, ["itsdangerous==2.1.2"])
    return build_request(eff, platform, CONFIG, exclude_newer=EXCLUDE_NEWER, **kw).req_id


def test_pinned_request_json_and_req_id() -> None:
    request = build_request(
        spec(["conda-forge", "bioconda"], ["python=3.11", "numpy>=1.26"], ["itsdangerous==2.1.2"]),
        "linux-64", CONFIG, exclude_newer=EXCLUDE_NEWER,
    )
    assert request.canonical_json().decode() == PINNED_JSON
    assert request.req_id == PINNED_REQ_ID


def test_reordering_dependencies_keeps_req_id() -> None:
    assert pinned(["conda-forge", "bioconda"], ["numpy>=1.26", "python=3.11"]) == PINNED_REQ_ID
    # Same requirement written differently normalises to the same text.
    assert pinned(["conda-forge", "bioconda"], [" numpy >=1.26", "python =3.11"]) == PINNED_REQ_ID


def test_reordering_channels_changes_req_id() -> None:
    reordered = pinned(["bioconda", "conda-forge"], ["python=3.11", "numpy>=1.26"])
    assert reordered == "9410a7b518861d2a1bd33c0a9f3635945810fd21"


def test_other_inputs_change_req_id() -> None:
    deps = ["python=3.11", "numpy>=1.26"]
    assert pinned(["conda-forge", "bioconda"], deps, "osx-arm64") == (
        "501d5645611eea31aaab70e2e27d6097a919ae45"
    )
    assert pinned(["conda-forge", "bioconda"], deps, base_full_id="b" * 40) == (
        "6e263e29ef2535d3fee99044e939fe1598e1028d"
    )
    no_cutoff = build_request(
        spec(["conda-forge", "bioconda"], deps, ["itsdangerous==2.1.2"]), "linux-64", CONFIG
    )
    assert no_cutoff.req_id == "dff87252de01acd190519a3f13bd290e4b68d764"


@pytest.mark.parametrize(
    ("conda", "pypi", "expected"),
    [
        (["numpy"], [], "conda-only"),
        ([], [], "conda-only"),
        (["python 3.11.*"], ["rich"], "pypi-only"),
        ([], ["rich"], "pypi-only"),
        (["python-dateutil"], ["rich"], "mixed"),
        (["conda-forge::python"], ["rich"], "pypi-only"),
        (["numpy", "python"], ["rich"], "mixed"),
    ],
)
def test_env_type(conda: list[str], pypi: list[str], expected: str) -> None:
    assert env_type(conda, pypi) == expected


def test_tags_that_are_not_a_mapping_are_a_schema_error_with_a_line() -> None:
    from envctl import yamlio
    from envctl.errors import EnvctlError
    from envctl.spec import parse_env_file

    data = yamlio.load("description: x\ntags: [v1, v2]\n", file="envs/a/b.yaml")
    with pytest.raises(EnvctlError) as excinfo:
        parse_env_file(data, file="envs/a/b.yaml")
    assert excinfo.value.file == "envs/a/b.yaml"
    assert excinfo.value.line == 2
    assert excinfo.value.rule == "schema"
