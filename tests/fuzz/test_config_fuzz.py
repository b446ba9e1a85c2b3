"""Fuzz the ``catalog.yaml`` model: any YAML-shaped input ends in a CatalogConfig or an
EnvctlError, and a config that parsed answers every question without raising."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from envctl import yamlio
from envctl.config import CatalogConfig, parse_config
from envctl.errors import EnvctlError

_name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
FUZZ = settings.get_profile(_name if _name in ("fuzz", "long") else "fuzz")

KEYS = ["version", "name", "description", "channels", "default_channels", "platforms",
        "virtual_packages", "mutable_tags", "branch", "store", "pypi_index",
        "pypi_exclude_newer", "allowed_signers", "admins", "principal", "key", "unknown"]
WORDS = ["1", "2", "main", "conda-forge", "a/b", "a::b", " x", "", "linux-64", "osx-arm64",
         "win-32", "latest", "dev-*", "[", "*", "__glibc", "glibc", "ssh-ed25519 AAAA ci",
         "rsa AAAA", "ssh-ed25519", "https://conda.example.org/main", "\u0430", "true",
         "false", "no"]

text = st.text(max_size=10)
scalar = st.one_of(st.none(), text, st.sampled_from(WORDS))
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(text, st.sampled_from(KEYS + WORDS)), inner, max_size=4),
    ),
    max_leaves=16,
)
config_doc = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "version": st.one_of(st.just("1"), scalar),
            "channels": st.one_of(st.dictionaries(st.sampled_from(WORDS), scalar, max_size=3),
                                  value),
            "default_channels": st.one_of(st.lists(st.sampled_from(WORDS), max_size=3), value),
            "platforms": st.one_of(st.lists(st.sampled_from(WORDS), max_size=3), value),
            "virtual_packages": st.dictionaries(st.sampled_from(WORDS), st.dictionaries(
                st.sampled_from(WORDS), scalar, max_size=2), max_size=2),
            "mutable_tags": st.one_of(st.lists(st.sampled_from(WORDS), max_size=4), value),
            "branch": scalar,
            "pypi_exclude_newer": scalar,
            "allowed_signers": st.one_of(st.lists(st.fixed_dictionaries(
                {"principal": scalar, "key": st.one_of(st.sampled_from(WORDS), scalar)}),
                max_size=2), value),
            "admins": st.one_of(st.lists(text, max_size=2), value),
        },
    ),
    st.dictionaries(st.one_of(text, st.sampled_from(KEYS)), value, max_size=6),
)


@FUZZ
@given(config_doc, st.lists(st.one_of(text, st.sampled_from(WORDS)), max_size=5))
def test_config_model_ends_in_a_config_or_a_clean_error(doc: dict[str, Any],
                                                        tags: list[str]) -> None:
    try:
        config = parse_config(doc)
    except EnvctlError as exc:
        assert exc.render()
        return
    assert isinstance(config, CatalogConfig)
    for tag in tags:
        assert config.is_mutable(tag) in (True, False)
    for platform in config.platforms:
        assert isinstance(config.virtual_packages_for(platform), dict)
    assert set(config.effective_default_channels) <= set(config.channels)
    assert isinstance(config.signer_keys(), dict)


@FUZZ
@given(config_doc)
def test_config_through_the_loader(doc: dict[str, Any]) -> None:
    text = yamlio.dump(doc)
    try:
        parse_config(yamlio.load(text, file="catalog.yaml"))
    except EnvctlError as exc:
        for error in getattr(exc, "errors", [exc]):
            assert error.file == "catalog.yaml"
