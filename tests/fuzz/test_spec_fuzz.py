"""Fuzz the environment-file model: any YAML-shaped input ends in an EnvFile or an
EnvctlError, and so do inheritance and the request built from what parsed.

Inputs are the shapes the safe loader can produce (str keys; str, None, list and dict
values), biased towards the real field names, tag names and requirement strings so that
deep paths (extends chains, pointers, targets, virtual packages) are reached too.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from envctl import yamlio
from envctl.config import CatalogConfig
from envctl.errors import EnvctlError
from envctl.names import Alias, parse_env_name
from envctl.spec import ConcreteTag, EnvFile, build_request, effective_spec, parse_env_file

_name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
FUZZ = settings.get_profile(_name if _name in ("fuzz", "long") else "fuzz")

GOOD_TAGS = ["v1", "v2", "v3", "latest", "stable", "nightly", "dev-x", "1.10", "no"]
BAD_TAGS = ["V1", "", "v1:x", "a/b", "..", "-v", "v\u0430", "x" * 70]
GOOD_REQUIREMENTS = ["python=3.11", "numpy>=1.26", "pandas", "main::numpy", "python 3.*",
                     "numpy=1=2=3", "itsdangerous==2.1.2", "A_B[x]>=1"]
BAD_REQUIREMENTS = ["conda-forge::numpy", "numpy[", "", " ", "*", "a @", "a[", "é", "\x00",
                    "numpy >=1.0,"]
GOOD_PLATFORMS = ["linux-64", "osx-arm64", "win-64"]
BAD_PLATFORMS = ["linux-32", "", "noarch"]
FIELDS = ["description", "extends", "channels", "platforms", "dependencies", "pypi",
          "pypi_options", "target", "virtual_packages", "retired", "points_to", "kind",
          "index_url", "extra_index_urls", "find_links", "exclude_newer", "__glibc", "unknown"]
TAGS = GOOD_TAGS + BAD_TAGS
REQUIREMENTS = GOOD_REQUIREMENTS + BAD_REQUIREMENTS
PLATFORMS = GOOD_PLATFORMS + BAD_PLATFORMS

text = st.text(max_size=12)
scalar = st.one_of(st.none(), text, st.sampled_from(TAGS + REQUIREMENTS + PLATFORMS))
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(text, st.sampled_from(FIELDS + TAGS + PLATFORMS)), inner,
                        max_size=4),
    ),
    max_leaves=20,
)


def plausible_tag(tags: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A tag spec made of valid parts (names of the env's own tags where one is named)."""
    requirements = st.lists(st.sampled_from(GOOD_REQUIREMENTS), max_size=4)
    concrete = st.fixed_dictionaries(
        {"dependencies": requirements},
        optional={
            "extends": st.one_of(st.sampled_from(tags), st.just("team/other:v1")),
            "channels": st.lists(st.sampled_from(["main", "conda-forge"]), min_size=1,
                                 max_size=2, unique=True),
            "platforms": st.lists(st.sampled_from(GOOD_PLATFORMS), min_size=1, max_size=2,
                                  unique=True),
            "pypi": st.lists(st.sampled_from(GOOD_REQUIREMENTS), max_size=2),
            "target": st.dictionaries(st.sampled_from(GOOD_PLATFORMS), st.fixed_dictionaries(
                {}, optional={"dependencies": requirements}), max_size=2),
            "virtual_packages": st.dictionaries(st.sampled_from(GOOD_PLATFORMS), st.dictionaries(
                st.sampled_from(["__glibc", "__cuda"]), st.sampled_from(["2.28", "12"]),
                max_size=2), max_size=1),
            "retired": st.sampled_from(["CVE-2024-1", "superseded"]),
            "description": text,
            "pypi_options": st.fixed_dictionaries({}, optional={
                "index_url": st.just("https://pypi.example.org/simple"),
                "extra_index_urls": st.lists(st.just("https://x.example.org"), max_size=1),
                "exclude_newer": st.sampled_from(["true", "false", "yes", "~"])}),
        },
    )
    pointer = st.fixed_dictionaries({"points_to": st.sampled_from(tags)})
    return st.one_of(concrete, concrete, pointer)


@st.composite
def plausible_env(draw: st.DrawFn) -> dict[str, Any]:
    tags = draw(st.lists(st.sampled_from(GOOD_TAGS), min_size=1, max_size=5, unique=True))
    doc: dict[str, Any] = {"tags": {t: draw(plausible_tag(tags)) for t in tags}}
    if draw(st.booleans()):
        doc["description"] = draw(text)
    if draw(st.booleans()):
        doc["owners"] = draw(st.lists(st.sampled_from(["alice", "@org/team"]), max_size=2))
    return doc


@st.composite
def mutated_env(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible file with one node replaced by anything (a bad name, a wrong shape...)."""
    doc = draw(plausible_env())
    node: Any = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return doc
        key = draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or draw(st.booleans()):
            if isinstance(node, dict) and draw(st.booleans()):
                node[draw(st.sampled_from(BAD_TAGS + FIELDS))] = node.pop(key)
            else:
                node[key] = draw(st.one_of(value, st.sampled_from(BAD_REQUIREMENTS
                                                                  + BAD_PLATFORMS)))
            return doc
        node = node[key]


env_doc = st.one_of(
    plausible_env(),
    mutated_env(),
    st.dictionaries(st.one_of(text, st.sampled_from(FIELDS)), value, max_size=5),
)
CONFIG = CatalogConfig(channels={"main": "https://conda.example.org/main"},
                       platforms=["linux-64", "osx-arm64"])
NAME = parse_env_name("team/app")


def exercise(env: EnvFile) -> None:
    """Inheritance and the per-platform request of every concrete tag: EnvctlError only."""

    def lookup(alias: Alias) -> Any:
        if alias.name != NAME or alias.tag not in env.tags:
            raise EnvctlError(f"{alias} does not exist", rule="extends-missing")
        return env.tags[alias.tag]

    for tag, spec in env.tags.items():
        if not isinstance(spec, ConcreteTag):
            continue
        try:
            effective = effective_spec(Alias(NAME, tag), lookup, CONFIG)
            for platform in effective.platforms:
                build_request(effective, platform, CONFIG, exclude_newer="2024-01-01")
        except EnvctlError:
            continue


@FUZZ
@given(env_doc)
def test_env_file_model_ends_in_a_model_or_a_clean_error(doc: dict[str, Any]) -> None:
    try:
        env = parse_env_file(doc, file="envs/team/app.yaml")
    except EnvctlError as exc:
        assert exc.render()  # renders as one message, whatever the input
        return
    assert isinstance(env, EnvFile) and env.tags
    exercise(env)


@FUZZ
@given(env_doc)
def test_env_file_through_the_loader_names_lines(doc: dict[str, Any]) -> None:
    """The same documents written as YAML and read back with line maps: errors carry the
    file and, where the loader knows it, a line inside the file."""
    text = yamlio.dump(doc)
    try:
        env = parse_env_file(yamlio.load(text, file="envs/team/app.yaml"),
                             file="envs/team/app.yaml")
    except EnvctlError as exc:
        errors = getattr(exc, "errors", [exc])
        for error in errors:
            assert error.file == "envs/team/app.yaml"
            assert error.line is None or 1 <= error.line <= text.count("\n") + 1
        return
    exercise(env)


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_arbitrary_bytes_as_an_env_file(data: bytes | str) -> None:
    """Loader then model, as lint and the hook run them on a pushed file."""
    with contextlib.suppress(EnvctlError):
        parse_env_file(yamlio.load(data, file="envs/x.yaml"), file="envs/x.yaml")
