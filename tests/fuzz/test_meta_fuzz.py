"""Fuzz the meta model (``locks/<env>/<tag>.meta.yaml``): any YAML-shaped input ends in a
Meta or an EnvctlError; a valid meta survives mutation only as a Meta or a clean error; and
what parses writes back to the same Meta (``dump_meta`` then load). Metas are written as JSON
(a YAML document too): the JSON fast path reads any bytes exactly as YAML does, or leaves
them to YAML."""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envctl import yamlio
from envctl.errors import EnvctlError
from envctl.meta import Meta, dump_meta, fast_json, load_meta, parse_meta
from envctl.testing.handlocks import config_yaml, env_yaml, lock_files

_name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
FUZZ = settings.get_profile(_name if _name in ("fuzz", "long") else "fuzz")

VALID = lock_files(
    {"catalog.yaml": config_yaml(platforms=("linux-64", "osx-arm64")),
     "envs/team/app.yaml": env_yaml({"v1": {"dependencies": ["python=3.11"]}})},
    "team/app:v1",
)["locks/team/app/v1.meta.yaml"]
HEX40 = "a" * 40
KEYS = ["version", "alias", "base", "exclude_newer", "pypi_exclude_newer", "resolved_at",
        "resolved_by",
        "envctl_version", "tools", "lock_sha256", "platforms", "req_id", "full_id", "request",
        "platform", "channels", "dependencies", "pypi", "virtual_packages", "base_full_id"]
WORDS = ["1", "2", HEX40, "A" * 40, "a" * 39, "b" * 64, "team/app:v1", "linux-64", "", "~",
         "true", "false"]

text = st.text(max_size=10)
scalar = st.one_of(st.none(), text, st.sampled_from(WORDS))
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(text, st.sampled_from(KEYS + WORDS)), inner, max_size=4),
    ),
    max_leaves=20,
)


def check(data: Any) -> Meta | None:
    try:
        meta = parse_meta(data, file="locks/team/app/v1.meta.yaml")
    except EnvctlError as exc:
        assert exc.render()
        return None
    assert meta.env_ids().keys() == meta.platforms.keys()
    if meta.alias.rsplit(":", 1)[-1].isprintable():  # see test_dump_meta_survives_any_alias
        written = dump_meta(meta)
        again = parse_meta(yamlio.load(written), file="again")
        assert again == meta
        assert load_meta(written, file="again") == meta  # the fast path, when it applies
    return meta


def test_the_valid_meta_parses() -> None:
    assert check(yamlio.load(VALID)) is not None


# Found by the long fuzz run: the header comment once carried the raw tag.
@pytest.mark.parametrize("alias", ["team/app:v1\nversion", "team/app:\x00", "\x1f"])
def test_dump_meta_survives_any_alias(alias: str) -> None:
    meta = parse_meta(yamlio.load(VALID), file="m").model_copy(update={"alias": alias})
    assert parse_meta(yamlio.load(dump_meta(meta)), file="again") == meta


@FUZZ
@given(st.dictionaries(st.one_of(text, st.sampled_from(KEYS)), value, max_size=8))
def test_arbitrary_documents(doc: dict[str, Any]) -> None:
    check(doc)


@FUZZ
@given(st.data())
def test_mutated_valid_metas(data: st.DataObject) -> None:
    doc: Any = yamlio.load(VALID, lines=False)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        node, path = doc, []
        while isinstance(node, dict | list) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(list(node) if isinstance(node, dict)
                                            else list(range(len(node)))))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        if data.draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = data.draw(value)
    check(doc)


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_through_the_loader(raw: bytes) -> None:
    with contextlib.suppress(EnvctlError):
        check(yamlio.load(raw, file="m.yaml"))


def _strings_only(node: Any, depth: int = 1) -> bool:
    """A document YAML could read: strings, nulls, mappings and lists, within its depth."""
    if isinstance(node, dict):
        return depth <= yamlio.MAX_DEPTH and all(_strings_only(v, depth + 1)
                                                  for v in node.values())
    if isinstance(node, list):
        return depth <= yamlio.MAX_DEPTH and all(_strings_only(v, depth + 1) for v in node)
    return node is None or isinstance(node, str)


def same_as_yaml(data: bytes) -> None:
    """Where the JSON fast path takes bytes, YAML reads the same document from them. The
    only exceptions are documents the meta model refuses from either reading: a number or
    boolean (YAML reads a string), nesting past yamlio's depth."""
    fast = fast_json(data)
    if fast is None or not _strings_only(fast):
        return
    assert fast == yamlio.load(data, file="m.yaml", lines=False)  # never refused


json_text = st.text(max_size=12)
json_value = st.recursive(
    st.one_of(st.none(), json_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(json_text, inner, max_size=4)),
    max_leaves=20,
)


@FUZZ
@given(st.dictionaries(json_text, json_value, max_size=6), st.booleans(), st.booleans())
def test_the_fast_path_reads_json_as_yaml_does(doc: dict[str, Any], indent: bool,
                                                ascii_only: bool) -> None:
    text = json.dumps(doc, indent=2 if indent else None, ensure_ascii=ascii_only)
    same_as_yaml(b"# a comment\n" + text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=40), st.binary(max_size=300))
def test_the_fast_path_on_arbitrary_bytes(header: bytes, raw: bytes) -> None:
    same_as_yaml(b"{" + raw)
    same_as_yaml(b"#" + header + b"\n{" + raw)


json_space = st.sampled_from(["", " ", "\n", "\t", "\r", "\r\n", "  \n "])


@FUZZ
@given(st.dictionaries(json_text, json_value, max_size=4), st.data())
def test_the_fast_path_with_any_json_spacing(doc: dict[str, Any], data: st.DataObject) -> None:
    """JSON allows whitespace between any two tokens; YAML is stricter about where."""
    tokens = [t for t in re.split(r'("(?:[^"\\]|\\.)*"|[{}\[\],:])',
                                  json.dumps(doc)) if t.strip()]
    text = "".join(token + data.draw(json_space) for token in tokens)
    same_as_yaml(b"# c\n" + text.encode("utf-8", "surrogatepass"))


# Found by review: YAML ends a comment at CR, NEL, LS and PS too, so a header could hide a
# second document only YAML sees; and bytes JSON decodes that YAML refuses as not text.
@pytest.mark.parametrize("data", [
    b'#\rkey:\n  {"a": "b"}\n', b'#\xc2\x85key:\n  {"a": "b"}\n', b'#\x00\n{"a": "b"}',
    b'#\xff\n{"a": "b"}', b'{"a": "\x7f"}', b'{"a": "\xed\xa0\x80"}', b'\t{"a": "b"}',
    b'{"a": "b"}\n\t', '{"a": "b"}'.encode("utf-16-le"), b'{"a"\n: "b"}',
    b'{"k"' + b" " * 1030 + b': "v"}', b'{"' + b"k" * 1030 + b'": "v"}',
])
def test_the_fast_path_refuses_what_yaml_reads_otherwise(data: bytes) -> None:
    assert fast_json(data) is None


# Found by the long fuzz run: YAML folds a raw NEL (and LS, PS) in a string into a space.
@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
def test_the_fast_path_leaves_yaml_line_breaks_to_yaml(char: str) -> None:
    data = json.dumps({"a": char}, ensure_ascii=False).encode()
    assert fast_json(data) is None
    same_as_yaml(data)


def test_the_fast_path_leaves_duplicates_numbers_and_escapes_to_yaml() -> None:
    duplicate = b'{"version": "1", "version": "2"}'
    assert fast_json(duplicate) is None
    with pytest.raises(EnvctlError, match="duplicate key 'version'"):
        load_meta(duplicate, file="m.meta.yaml")
    assert fast_json(b'{"a": "\\ud800"}') is None
    # A number is read by YAML as a string: the meta stays valid, as it always was.
    meta = load_meta(VALID.encode(), file="m")
    numbered = dump_meta(meta).replace(b'"version": "1"', b'"version": 1', 1)
    assert fast_json(numbered) is not None
    assert load_meta(numbered, file="m") == meta


def test_written_metas_take_the_fast_path_and_old_yaml_metas_still_read() -> None:
    meta = load_meta(VALID.encode(), file="m")
    written = dump_meta(meta)
    assert written.startswith(b"# Resolved by envctl; do not edit.")
    assert fast_json(written) is not None
    old = b"# Resolved by envctl\n" + yamlio.dump(meta.model_dump(mode="json")).encode()
    assert fast_json(old) is None
    assert load_meta(old, file="m") == meta


def test_pypi_exclude_newer_is_written_only_when_false() -> None:
    meta = load_meta(VALID.encode(), file="m")
    assert meta.pypi_exclude_newer is True
    written = dump_meta(meta)
    assert b"pypi_exclude_newer" not in written
    # An explicit true (hand-written) is the default: written as if it were absent.
    explicit = written.replace(
        b'  "resolved_at"', b'  "pypi_exclude_newer": true,\n  "resolved_at"'
    )
    assert load_meta(explicit, file="m") == meta
    assert dump_meta(load_meta(explicit, file="m")) == written

    opted_out = meta.model_copy(update={"pypi_exclude_newer": False})
    data = dump_meta(opted_out)
    assert data == written.replace(
        b'  "resolved_at"', b'  "pypi_exclude_newer": false,\n  "resolved_at"'
    )
    assert fast_json(data) is not None
    assert load_meta(data, file="m") == opted_out
    assert parse_meta(yamlio.load(data), file="m") == opted_out  # YAML reads "false"
    assert dump_meta(load_meta(data, file="m")) == data


@pytest.mark.parametrize("value", ["1", "0", "no", "null", "[]"])
def test_pypi_exclude_newer_takes_only_true_or_false(value: str) -> None:
    data = dump_meta(load_meta(VALID.encode(), file="m")).replace(
        b'  "resolved_at"', f'  "pypi_exclude_newer": {value},\n  "resolved_at"'.encode()
    )
    with pytest.raises(EnvctlError) as info:
        load_meta(data, file="m.meta.yaml")
    assert info.value.rule == "schema" and "pypi_exclude_newer" in info.value.message


def test_a_meta_key_too_long_for_yaml_is_refused() -> None:
    """dump_meta once wrote metas YAML cannot read: a flow key has at most 1,024 characters
    (found by review)."""
    meta = load_meta(VALID.encode(), file="m")
    with pytest.raises(EnvctlError, match="at most 200 characters"):
        parse_meta({**meta.model_dump(mode="json"), "tools": {"k" * 1030: "1"}}, file="m")
