"""The alias grammar (envctl.names): parsing, refusals and their messages, interpolation."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envctl.errors import InvalidNameError
from envctl.names import (
    DEFAULT_TAG,
    SEGMENT_RE,
    Alias,
    EnvId,
    EnvName,
    canonical_key,
    env_name_from_path,
    format_alias,
    interpolate,
    is_40hex,
    is_valid_segment,
    parse_alias,
    parse_env_id,
    parse_env_name,
    parse_ref,
    parse_tag,
)

REQ = "0123456789abcdef0123456789abcdef01234567"
FULL = "89abcdef0123456789abcdef0123456789abcdef"

FAST = settings(max_examples=150, deadline=None)


def refused(fn, text: object, rule: str = "invalid-name", **kwargs: object) -> InvalidNameError:
    with pytest.raises(InvalidNameError) as info:
        fn(text, **kwargs)
    err = info.value
    assert err.rule == rule, err.render()
    assert err.fix, f"no fix suggested: {err.render()}"
    return err


# -- good names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments", "tag", "explicit"),
    [
        (
            "mlp/metaflow/conda_example/numpy_test_env:latest",
            ("mlp", "metaflow", "conda_example", "numpy_test_env"),
            "latest",
            True,
        ),
        ("numpy_test_env:v1", ("numpy_test_env",), "v1", True),
        ("team/env", ("team", "env"), DEFAULT_TAG, False),
        ("a", ("a",), "latest", False),
        ("0/9-x.y_z:1.10", ("0", "9-x.y_z"), "1.10", True),
        ("team/env:dev-2024.01_a", ("team", "env"), "dev-2024.01_a", True),
        ("a..b/c", ("a..b", "c"), "latest", False),
        ("team/env:" + REQ, ("team", "env"), REQ, True),  # a hex tag is fine
        ("/".join("s" * 15 for _ in range(16)), ("s" * 15,) * 16, "latest", False),
        ("x" * 64 + ":" + "t" * 64, ("x" * 64,), "t" * 64, True),
    ],
)
def test_good_names(text: str, segments: tuple[str, ...], tag: str, explicit: bool) -> None:
    alias = parse_alias(text)
    assert alias.name.segments == segments
    assert alias.tag == tag
    assert alias.explicit_tag is explicit
    assert parse_ref(text) == alias
    assert str(alias) == f"{'/'.join(segments)}:{tag}"


def test_env_name_properties() -> None:
    name = parse_env_name("team/proj/env")
    assert name.path == str(name) == "team/proj/env"
    assert name.namespace == ("team", "proj")
    assert name.env == "env"
    assert name.env_file == PurePosixPath("envs/team/proj/env.yaml")
    assert name.lock_dir == PurePosixPath("locks/team/proj/env")
    single = parse_env_name("env")
    assert single.namespace == ()
    assert single.env_file == PurePosixPath("envs/env.yaml")


def test_alias_properties() -> None:
    alias = parse_alias("team/env:v3")
    assert str(alias) == "team/env:v3"
    assert alias.lock_path == PurePosixPath("locks/team/env/v3.conda-lock.yml")
    assert alias.meta_path == PurePosixPath("locks/team/env/v3.meta.yaml")
    assert alias.env_file == PurePosixPath("envs/team/env.yaml")
    assert format_alias(alias.name, "v3") == "team/env:v3"


def test_default_tag_and_explicit_flag() -> None:
    implicit = parse_alias("team/env")
    explicit = parse_alias("team/env:latest")
    assert implicit.tag == "latest" and not implicit.explicit_tag
    assert explicit.explicit_tag
    assert implicit == explicit and hash(implicit) == hash(explicit)
    assert parse_alias("team/env", default_tag="stable").tag == "stable"
    refused(parse_alias, "team/env", "invalid-tag", default_tag="Bad Tag")


def test_ordering_and_hashing() -> None:
    names = [parse_env_name(t) for t in ("b", "a/c", "a/b", "a")]
    assert [str(n) for n in sorted(names)] == ["a", "a/b", "a/c", "b"]
    aliases = {parse_alias("a/b:v1"), parse_alias("a/b:v1"), parse_alias("a/b:v2")}
    assert sorted(str(a) for a in aliases) == ["a/b:v1", "a/b:v2"]
    assert Alias(parse_env_name("a/b"), "v1") == parse_alias("a/b:v1")


def test_env_id() -> None:
    ref = parse_ref(f"{REQ}:{FULL}")
    assert ref == EnvId(REQ, FULL) == parse_env_id(f"{REQ}:{FULL}")
    assert str(ref) == f"{REQ}:{FULL}"
    assert is_40hex(REQ) and not is_40hex(REQ.upper()) and not is_40hex(REQ[:-1])
    assert not is_40hex(REQ + "\n") and not is_40hex(None)


def test_parse_tag() -> None:
    assert parse_tag("v1") == "v1"
    assert parse_tag("1.10") == "1.10"
    assert "tags are lower case" in refused(parse_tag, "V1", "invalid-tag").message
    assert 'give the tag alone: "v1"' in refused(parse_tag, "team/env:v1", "invalid-tag").fix
    refused(parse_tag, "", "invalid-tag")
    refused(parse_tag, "..", "invalid-tag")
    refused(parse_tag, "t" * 65, "invalid-tag")


def test_segment_re_is_fullmatch_form() -> None:
    assert SEGMENT_RE.fullmatch("env-1.x_y")
    assert not SEGMENT_RE.fullmatch("env\n")
    assert not SEGMENT_RE.fullmatch("Env")
    assert not SEGMENT_RE.fullmatch("a" * 65)


# -- refusals and their messages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule", "expected"),
    [
        ("", "invalid-name", "empty name"),
        ("team//env", "invalid-name", 'empty segment ("//"): did you mean "team/env"?'),
        (":latest", "invalid-name", 'no name before ":"'),
        ("team/env:", "invalid-tag", 'nothing after ":"'),
        ("a:b:c", "invalid-name", 'has 2 ":"'),
        ("a/../b", "invalid-name", 'has a ".." segment'),
        ("../b", "invalid-name", 'has a ".." segment'),
        ("a/./b", "invalid-name", 'has a "." segment'),
        ("..", "invalid-name", 'has a ".." segment'),
        ("/team/env", "invalid-name", 'starts with "/"; names are relative'),
        ("team/env/", "invalid-name", 'ends with "/": did you mean "team/env"?'),
        ("team/-env", "invalid-name", 'starts with "-"'),
        ("team/_env", "invalid-name", 'starts with "_"'),
        ("team/.env", "invalid-name", 'starts with "."'),
        ("team/env:.x", "invalid-tag", 'starts with "."'),
        ("team/env:..", "invalid-tag", '"." and ".."'),
        (
            "Team/env",
            "invalid-name",
            '"Team/env" has upper case; names are lower case: did you mean "team/env"?',
        ),
        ("team/env:V1", "invalid-tag", 'tags are lower case: did you mean "team/env:v1"?'),
        ("a/b\n", "invalid-name", r'whitespace ("\n" at position 3)'),
        ("a/b ", "invalid-name", 'did you mean "a/b"?'),
        (" a/b", "invalid-name", "whitespace"),
        ("team/my env", "invalid-name", 'did you mean "team/my-env"?'),
        ("team/env:v1\t", "invalid-tag", "whitespace"),
        ("t\u0435am/env", "invalid-name", "CYRILLIC SMALL LETTER IE"),  # Cyrillic 'е'
        ("tеam/env", "invalid-name", 'plain ASCII: did you mean "team/env"?'),
        ("ｔｅａｍ/ｅｎｖ", "invalid-name", "FULLWIDTH LATIN SMALL LETTER T"),
        ("ｔｅａｍ/ｅｎｖ", "invalid-name", 'did you mean "team/env"?'),
        ("café/env", "invalid-name", "non-ASCII"),
        ("team/env:v1\u200b", "invalid-tag", "ZERO WIDTH SPACE"),
        ("a" * 65, "invalid-name", "65 characters long; a segment is at most 64"),
        ("/".join(["a" * 60] * 5), "invalid-name", "a name (without its tag) is at most 255"),
        ("a/b:" + "t" * 65, "invalid-tag", "a tag is at most 64"),
        ("x" * 1000, "invalid-name", "1000 characters long"),
        ("/".join("a" * 17), "invalid-name", "17 segments; a name has at most 16"),
        (
            f"{REQ}:{FULL[:-1]}",
            "invalid-id",
            "a resolved id is two 40-character lower-case hex halves",
        ),
        (f"{REQ}:{FULL[:-1]}", "invalid-id", "full_id has 39 characters"),
        (f"{REQ}0:{FULL}", "invalid-id", "req_id has 41 characters"),
        (f"{REQ.upper()}:{FULL}", "invalid-id", "upper-case hex"),
        (f"{REQ[:-1]}g:{FULL}", "invalid-id", '"g", which is not a hex digit'),
        (f"{REQ}:{FULL[:-1]}z", "invalid-id", "full_id has"),
        (f"deadbeef:{FULL}", "invalid-id", "req_id has 8 characters"),
        (REQ, "invalid-name", "reserved for resolved ids"),
        (f"{REQ}:latest", "invalid-name", "reserved for resolved ids"),
        (f"team/{REQ}/env", "invalid-name", "reserved for resolved ids"),
        ("team/env.yaml", "invalid-name", 'ends with ".yaml"'),
        ("team/env.yaml:v1", "invalid-name", 'did you mean "team/env:v1"?'),
        ("team/v1.conda-lock.yml/x", "invalid-name", 'ends with ".yml"'),
        ("team/x.json", "invalid-name", 'ends with ".json"'),
        ("team/env@v1", "invalid-name", '"@" at position 8, which is not allowed'),
        ("team\\env", "invalid-name", 'did you mean "team/env"?'),
        ("@{TEAM}/env", "invalid-name", 'unexpanded variable "@{TEAM}"'),
        ("team/env:v1/x", "invalid-tag", '"/" at position 2'),
        ("a\x00b", "invalid-name", r'"\x00"'),
    ],
)
def test_refusals(text: str, rule: str, expected: str) -> None:
    err = refused(parse_ref, text, rule)
    assert expected in err.message, err.render()
    assert "\n" not in err.render()  # one line, whatever the input


@pytest.mark.parametrize("text", ["team//env", "a/../b", "Team/env", "a/b\n", "team/env:", ":v1"])
def test_refusals_are_the_same_through_every_parser(text: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_alias(text)
    with pytest.raises(InvalidNameError):
        parse_env_name(text)


def test_upper_case_message_exactly() -> None:
    err = refused(parse_env_name, "Team/env")
    assert (
        err.message == '"Team/env" has upper case; names are lower case: did you mean "team/env"?'
    )
    assert err.fix == 'use "team/env"'


def test_name_refuses_a_tag() -> None:
    err = refused(parse_env_name, "team/env:v1")
    assert "a tag is not allowed here" in err.message
    assert '"team/env"' in err.fix


def test_env_id_refusals() -> None:
    err = refused(parse_env_id, "team/env", "invalid-id")
    assert "a resolved id is two 40-character lower-case hex halves" in err.message
    err = refused(parse_env_id, f"{REQ}:{FULL}\n", "invalid-id")
    assert "whitespace" in err.message and f'"{REQ}:{FULL}"' in err.fix
    err = refused(parse_env_id, f"{REQ}:{FULL.upper()}", "invalid-id")
    assert f'did you mean "{REQ}:{FULL}"?' in err.message
    refused(parse_env_id, "", "invalid-id")
    refused(parse_env_id, f"{REQ}:{FULL}:{FULL}", "invalid-id")
    with pytest.raises(InvalidNameError) as info:
        EnvId(REQ, FULL[:-1])
    assert info.value.rule == "invalid-id"


def test_hexish_short_pairs_are_aliases() -> None:
    assert parse_ref("abc:def") == parse_alias("abc:def")
    assert isinstance(parse_ref("cafe:beef"), Alias)


@pytest.mark.parametrize("value", [None, 1, 1.5, b"team/env", ["team", "env"], object()])
@pytest.mark.parametrize(
    "fn",
    [
        parse_ref,
        parse_alias,
        parse_env_name,
        parse_tag,
        parse_env_id,
        interpolate,
        canonical_key,
        env_name_from_path,
    ],
)
def test_non_text_is_an_invalid_name_error(fn, value: object) -> None:
    with pytest.raises(InvalidNameError) as info:
        fn(value)
    assert "as text" in info.value.message or "not" in info.value.message


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidNameError, match="tuple of segments"):
        EnvName("team/env")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError, match=r'has a "\.\." segment'):
        EnvName(("a", ".."))
    with pytest.raises(InvalidNameError):
        EnvName(("a/b",))
    with pytest.raises(InvalidNameError):
        EnvName(())
    with pytest.raises(InvalidNameError):
        EnvName(("a", 1))  # type: ignore[arg-type]
    assert EnvName(["a", "b"]) == parse_env_name("a/b")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError) as info:
        Alias(parse_env_name("a"), "../x")
    assert info.value.rule == "invalid-tag"
    with pytest.raises(InvalidNameError):
        Alias("a", "v1")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        format_alias("a", "v1")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        format_alias(parse_env_name("a"), "V1")


def test_is_valid_segment() -> None:
    assert is_valid_segment("env")
    for bad in ("", "Env", "-x", REQ, "x.yaml", "a" * 65, "a/b", "a\n", 3):
        assert not is_valid_segment(bad)


# -- env_name_from_path -----------------------------------------------------------------


def test_env_name_from_path() -> None:
    assert env_name_from_path("envs/a/b.yaml") == parse_env_name("a/b")
    assert env_name_from_path("envs/env.yaml") == parse_env_name("env")
    assert env_name_from_path(PurePosixPath("envs/a/b/c.yaml")) == parse_env_name("a/b/c")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("locks/a/b.yaml", "is not under envs/"),
        ("a/b.yaml", "is not under envs/"),
        ("/envs/a.yaml", "is not under envs/"),
        ("envs/a/b.yml", "does not end in .yaml"),
        ("envs/a/b", "does not end in .yaml"),
        ("envs/.yaml", "empty name"),
        ("envs/../x.yaml", 'has a ".." segment'),
        ("envs//x.yaml", "starts with"),
        ("envs/A/b.yaml", "upper case"),
        ("envs/a/b.yaml.yaml", "reserved"),
    ],
)
def test_env_name_from_path_refusals(path: str, expected: str) -> None:
    err = refused(env_name_from_path, path)
    assert expected in err.message
    assert err.file == path


def test_env_name_from_path_yml_fix() -> None:
    assert 'rename it to "envs/a/b.yaml"' in refused(env_name_from_path, "envs/a/b.yml").fix


# -- interpolation ----------------------------------------------------------------------


def test_interpolate_basic() -> None:
    env = {"TEAM": "ranking", "VER": "v3", "P": "my", "S": "-dev"}
    assert interpolate("@{TEAM}/env:@{VER}", env) == "ranking/env:v3"
    assert interpolate("@{TEAM}/@{P}@{S}", env) == "ranking/my-dev"
    assert interpolate("team/env", env) == "team/env"
    assert interpolate("", env) == ""


def test_interpolate_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_TEST_TEAM", "ranking")
    assert interpolate("@{ENVCTL_TEST_TEAM}/env") == "ranking/env"
    monkeypatch.delenv("ENVCTL_TEST_TEAM")
    err = refused(interpolate, "@{ENVCTL_TEST_TEAM}/env", "unset-variable")
    assert "ENVCTL_TEST_TEAM" in err.message


def test_interpolate_is_one_pass() -> None:
    # A value that itself looks like a reference is never expanded: it is refused.
    err = refused(interpolate, "@{A}/env", "invalid-variable", env={"A": "@{B}", "B": "x"})
    assert "@{A}" in err.message and "not expanded again" in err.message
    # Text produced by a substitution is not rescanned.
    assert interpolate("@{A}{B}", {"A": "x", "B": "y"}) == "x{B}"


def test_interpolate_unset_and_empty() -> None:
    err = refused(interpolate, "@{TEAM}/env", "unset-variable", env={})
    assert "TEAM is not set" in err.message and "TEAM" in err.fix
    err = refused(interpolate, "team/@{ENV}", "unset-variable", env={"ENV": ""})
    assert "ENV is empty" in err.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a/b", 'contains "/"'),
        ("/", 'contains "/"'),
        ("v1:x", 'contains ":"'),
        (":v2", 'contains ":"'),
        ("a b", "whitespace"),
        ("a\n", "whitespace"),
        ("Ranking", 'did you mean "ranking"?'),
        ("rаnking", "non-ASCII"),
        ("a@b", '"@"'),
    ],
)
def test_interpolate_refuses_injection(value: str, expected: str) -> None:
    err = refused(interpolate, "team/@{X}/env", "invalid-variable", env={"X": value})
    assert expected in err.message
    assert "@{X}" in err.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("team/@{TEAM", 'without a closing "}"'),
        ("@{}/env", "names no variable"),
        ("@{1X}/env", "is not a variable reference"),
        ("@{A-B}/env", "is not a variable reference"),
        ("@{A B}/env", "is not a variable reference"),
    ],
)
def test_interpolate_malformed(text: str, expected: str) -> None:
    err = refused(interpolate, text, "invalid-variable", env={"A": "a", "X": "x"})
    assert expected in err.message


# -- canonical keys ---------------------------------------------------------------------


def test_canonical_key_collisions() -> None:
    assert canonical_key("my-env") == canonical_key("my_env") == canonical_key("my.env")
    assert canonical_key("My_Env") == "my-env"
    assert canonical_key("team/my_env") == canonical_key("team/my-env")
    assert canonical_key("v1.0") == canonical_key("v1-0")
    assert canonical_key("my__env") == canonical_key("my-env")
    assert canonical_key("myenv") != canonical_key("my-env")
    assert canonical_key("a/b") != canonical_key("a-b")


# -- properties -------------------------------------------------------------------------

_first = "abcdefghijklmnopqrstuvwxyz0123456789"
_rest = _first + "_.-"
segments = st.builds(
    lambda a, b: a + b,
    st.sampled_from(_first),
    st.text(alphabet=_rest, max_size=12),
).filter(is_valid_segment)
tags = st.builds(lambda a, b: a + b, st.sampled_from(_first), st.text(alphabet=_rest, max_size=12))
names = st.lists(segments, min_size=1, max_size=6).map(lambda s: EnvName(tuple(s)))
aliases = st.builds(Alias, names, tags)


@FAST
@given(st.lists(segments, min_size=1, max_size=6), tags)
def test_format_parse_roundtrip_text(segs: list[str], tag: str) -> None:
    text = "/".join(segs) + ":" + tag
    alias = parse_alias(text)
    assert format_alias(alias.name, alias.tag) == text
    assert str(alias) == text
    assert str(parse_env_name("/".join(segs))) == "/".join(segs)


@FAST
@given(aliases)
def test_parse_format_roundtrip_alias(alias: Alias) -> None:
    assert parse_alias(format_alias(alias.name, alias.tag)) == alias
    assert parse_ref(str(alias)) == alias


def _inside(path: PurePosixPath, root: str, n_parts: int) -> None:
    assert not path.is_absolute()
    assert path.parts[0] == root
    assert len(path.parts) == n_parts  # nothing dropped or collapsed by PurePosixPath
    assert all(p not in ("", ".", "..") for p in path.parts)
    assert str(path) == "/".join(path.parts)


# Text close to the grammar, so that many draws parse and many nearly do.
near_text = st.text(alphabet="ab0./-_:A \n\\@{}", max_size=20)


@FAST
@given(st.one_of(near_text, st.builds(str, aliases)))
def test_accepted_names_stay_inside_the_tree(text: str) -> None:
    try:
        alias = parse_alias(text)
    except InvalidNameError:
        return
    n = len(alias.name.segments)
    _inside(alias.name.env_file, "envs", n + 1)
    _inside(alias.name.lock_dir, "locks", n + 1)
    _inside(alias.lock_path, "locks", n + 2)
    _inside(alias.meta_path, "locks", n + 2)
    assert alias.lock_path.parent == alias.meta_path.parent == alias.name.lock_dir


# Segments chosen so that file names of one alias collide with folder names of another
# unless the grammar prevents it.
clash_segments = st.sampled_from(
    ["a", "b", "v1", "b.yaml", "v1.conda-lock.yml", "v1.meta.yaml", "v1.json", "b.yml"]
)


@FAST
@given(
    st.lists(clash_segments, min_size=1, max_size=3),
    st.lists(clash_segments, min_size=1, max_size=4),
    st.sampled_from(["v1", "a", "b"]),
)
def test_no_file_is_another_environments_folder(one: list[str], two: list[str], tag: str) -> None:
    try:
        a = parse_alias("/".join(one) + ":" + tag)
        b = parse_alias("/".join(two) + ":" + tag)
    except InvalidNameError:
        return
    files_a = {a.env_file, a.lock_path, a.meta_path}
    folders_b = {d for p in (b.env_file, b.lock_path, b.meta_path) for d in p.parents}
    assert not files_a & folders_b


@FAST
@given(st.one_of(st.text(), near_text, st.text(max_size=400)))
def test_arbitrary_text_only_raises_invalid_name_error(text: str) -> None:
    for fn in (parse_ref, parse_alias, parse_env_name, parse_tag, parse_env_id):
        try:
            fn(text)
        except InvalidNameError as err:
            assert err.message and err.fix is not None
            assert "\n" not in err.render()


@FAST
@given(
    st.text(alphabet="@{}AB_x/:", max_size=16),
    st.dictionaries(st.sampled_from(["A", "B", "x"]), st.text(max_size=5), max_size=3),
)
def test_interpolate_only_raises_invalid_name_error(text: str, env: dict[str, str]) -> None:
    try:
        out = interpolate(text, env)
    except InvalidNameError as err:
        assert err.rule in ("unset-variable", "invalid-variable")
        return
    # Whatever was substituted cannot have added a segment or a tag.
    outside = re.sub(r"@\{[^}]*\}", "", text)
    assert out.count("/") == outside.count("/")
    assert out.count(":") == outside.count(":")


@FAST
@given(segments, segments)
def test_canonical_key_is_stable(a: str, b: str) -> None:
    assert canonical_key(canonical_key(a)) == canonical_key(a)
    if a.replace("_", "-") == b.replace("_", "-"):
        assert canonical_key(a) == canonical_key(b)
