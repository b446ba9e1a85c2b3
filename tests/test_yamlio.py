"""The one safe YAML loader: no retyping, every refusal with its rule and line, dump round-trips."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envctl import yamlio
from envctl.errors import YamlError
from envctl.yamlio import MAX_DEPTH, YamlList, YamlMap, dump, load, load_path

BACKENDS = ["libyaml", "python"] if yamlio.HAVE_LIBYAML else ["python"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test against libyaml and against the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(yamlio, "_CParser", None)
    yield request.param


def refused(text: str | bytes, **kwargs: Any) -> YamlError:
    with pytest.raises(YamlError) as info:
        load(text, **kwargs)
    return info.value


def path_refused(path: Path, **kwargs: Any) -> YamlError:
    with pytest.raises(YamlError) as info:
        load_path(path, **kwargs)
    return info.value


# ---------------------------------------------------------------- no retyping


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.10", "1.10"),
        ("3.10", "3.10"),
        ("no", "no"),
        ("No", "No"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("true", "true"),
        ("False", "False"),
        ("0755", "0755"),
        ("0x1F", "0x1F"),
        ("0o17", "0o17"),
        ("1_000", "1_000"),
        ("1e3", "1e3"),
        ("12", "12"),
        ("-1", "-1"),
        (".inf", ".inf"),
        (".NaN", ".NaN"),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("12:30:00", "12:30:00"),
        ("=", "="),
        ("'null'", "null"),
        ('"~"', "~"),
        ("''", ""),
        ('"1.10"', "1.10"),
        ("numpy>=1.10,!=1.11.*", "numpy>=1.10,!=1.11.*"),
        ("python 3.10 # comment", "python 3.10"),
        ("|\n  block\n  text\n", "block\ntext\n"),
        (">-\n  folded\n  text\n", "folded text"),
    ],
)
def test_scalars_stay_strings(backend: str, raw: str, expected: str) -> None:
    assert load(f"v: {raw}\n") == {"v": expected}
    assert load(f"v:\n- {raw}\n") == {"v": [expected]}


@pytest.mark.parametrize("raw", ["~", "null", "Null", "NULL", ""])
def test_explicit_nulls_are_none(backend: str, raw: str) -> None:
    assert load(f"v: {raw}\n") == {"v": None}
    assert load(f"v: [{raw}]\n") == {"v": [None]} if raw else True
    assert load(f"v:\n- {raw}\n") == {"v": [None]}


def test_empty_values_and_flow(backend: str) -> None:
    assert load("a:\nb: {c: , d: ~}\ne: []\nf: {}\n") == {
        "a": None,
        "b": {"c": None, "d": None},
        "e": [],
        "f": {},
    }


@pytest.mark.parametrize(
    ("raw", "key"),
    [("1", "1"), ("1.10", "1.10"), ("no", "no"), ("null", "null"), ("~", "~"), ("'x y'", "x y")],
)
def test_keys_are_strings(backend: str, raw: str, key: str) -> None:
    data = load(f"{raw}: x\n")
    assert data == {key: "x"}
    assert all(type(k) is str for k in data)


def test_quoted_merge_key_is_a_plain_string(backend: str) -> None:
    assert load("'<<': x\n") == {"<<": "x"}


def test_types_and_document_markers(backend: str) -> None:
    data = load("%YAML 1.1\n---\na: [b, {c: d}]\n...\n")
    assert type(data) is YamlMap
    assert type(data["a"]) is YamlList
    assert type(data["a"][1]) is YamlMap
    assert type(data["a"][0]) is str


def test_bytes_and_utf8_bom(backend: str) -> None:
    assert load("é: ü\n".encode()) == {"é": "ü"}
    assert load(b"\xef\xbb\xbfa: b\n") == {"a": "b"}
    assert load("\ufeffa: b\n") == {"a": "b"}


# ---------------------------------------------------------------- lines

ENV = """\
# an environment file
name: team/proj/env
tags:
  v1:
    python: "3.10"
    deps:
      - numpy
      - pandas>=2
  v2: {python: 3.11, deps: [a,
    b]}
list:
- x
- k: v
- [y]
"""


def test_key_and_item_lines(backend: str) -> None:
    data = load(ENV)
    assert data.line == 2
    assert data.key_lines == {"name": 2, "tags": 3, "list": 11}
    tags = data["tags"]
    assert tags.line == 4
    assert tags.key_lines == {"v1": 4, "v2": 9}
    assert tags["v1"].key_lines == {"python": 5, "deps": 6}
    assert tags["v1"]["deps"].line == 7
    assert tags["v1"]["deps"].item_lines == [7, 8]
    assert tags["v2"].line == 9
    assert tags["v2"]["deps"].item_lines == [9, 10]
    assert data["list"].item_lines == [12, 13, 14]
    assert data["list"][1].line == 13
    assert data["list"][1].key_lines == {"k": 13}
    assert data["list"][2].line == 14


def test_lines_false_gives_plain_containers(backend: str) -> None:
    fast = load(ENV, lines=False)
    assert fast == load(ENV)
    assert type(fast) is dict
    assert type(fast["tags"]["v1"]["deps"]) is list


def test_key_lines_with_explicit_start_and_complex_key(backend: str) -> None:
    data = load("---\n\na: 1\n? long\n: 2\n")
    assert data.line == 3
    assert data.key_lines == {"a": 3, "long": 4}


# ---------------------------------------------------------------- refusals

REFUSALS = [
    # (text, rule, line)
    ("a: 1\nb: 2\na: 3\n", "duplicate-key", 3),
    ("a:\n  x: 1\n  x: 2\n", "duplicate-key", 3),
    ("{a: 1, a: 2}", "duplicate-key", 1),
    ("a: &x 1\nb: *x\n", "yaml-alias", 1),
    ("a: 1\nb: &x\n  c: 1\n", "yaml-alias", 2),
    ("a: &x [1]\n", "yaml-alias", 1),
    ("a: 1\nb: *x\n", "yaml-alias", 2),
    ("--- &root\na: 1\n", "yaml-alias", 1),
    ("a: !!python/object:os.system x\n", "yaml-tag", 1),
    ("a: 1\nb: !foo x\n", "yaml-tag", 2),
    ("a: !!str 1\n", "yaml-tag", 1),
    ("a: ! x\n", "yaml-tag", 1),
    ("a: !!map {b: c}\n", "yaml-tag", 1),
    ("a: !!seq [b]\n", "yaml-tag", 1),
    ("--- !!map\na: 1\n", "yaml-tag", 1),
    ("- a\n- b\n", "not-a-mapping", 1),
    ("just a string\n", "not-a-mapping", 1),
    ("\n\n42\n", "not-a-mapping", 3),
    ("", "not-a-mapping", 1),
    ("# only a comment\n", "not-a-mapping", 1),
    ("---\n", "not-a-mapping", 2),
    ("a: 1\n---\nb: 2\n", "multiple-documents", 2),
    ("a: 1\n...\n---\n", "multiple-documents", 3),
    ("a: b: c\n", "yaml-syntax", 1),
    ("a: 1\nb: [\n", "yaml-syntax", 3),
    ("a: 1\n  b: 2\n", "yaml-syntax", 2),
    ("a: 'unterminated\n", "yaml-syntax", 2),
    ("a:\n\tb: 1\n", "yaml-syntax", 2),
    ("%YAML 9.9\n---\na: 1\n", "yaml-syntax", 1),
    ("<<: {a: 1}\n", "yaml-merge", 1),
    ("a: 1\nb:\n  <<: {c: 2}\n", "yaml-merge", 3),
    ("? [a, b]\n: c\n", "non-scalar-key", 1),
    ("a: 1\n? {b: 1}\n: c\n", "non-scalar-key", 2),
    ("{[a]: b}\n", "non-scalar-key", 1),
    (b"a: 1\nb: \xff\xfe\n", "not-text", 2),
    (b"a: 1\n\x00\n", "not-text", 2),
    (b"\xff\xfea\x00:\x00", "not-text", 1),
    ("a: 1\nb: \x01\n", "not-text", 2),
    ("a: \ud800\n", "not-text", 1),
]


@pytest.mark.parametrize(("text", "rule", "line"), REFUSALS)
def test_refusals(backend: str, text: str | bytes, rule: str, line: int) -> None:
    err = refused(text, file="envs/x.yaml")
    assert (err.rule, err.line, err.file) == (rule, line, "envs/x.yaml")
    assert err.fix
    assert "Traceback" not in err.render()
    # lines=False refuses the same way
    err2 = refused(text, file="envs/x.yaml", lines=False)
    assert (err2.rule, err2.line, err2.message) == (rule, line, err.message)


def test_refusal_rules_are_distinct() -> None:
    rules = {
        "duplicate-key",
        "yaml-alias",
        "yaml-tag",
        "not-a-mapping",
        "multiple-documents",
        "file-too-large",
        "too-deep",
        "not-text",
        "yaml-syntax",
        "yaml-merge",
        "non-scalar-key",
    }
    assert rules >= {rule for _, rule, _ in REFUSALS}


def test_duplicate_key_message_names_key_and_both_lines(backend: str) -> None:
    for lines in (True, False):
        err = refused("name: a\nother: b\nname: c\n", lines=lines)
        assert "'name'" in err.message
        assert "1" in err.message and "3" in err.message
        assert err.line == 3


def test_alias_fix_text() -> None:
    err = refused("a: &x 1\n")
    assert err.fix == "write the value out in full"


def test_syntax_error_line_from_problem_mark(backend: str) -> None:
    err = refused("a: 1\nb: 2\nc: [x, y\nd: 4\n")
    assert err.rule == "yaml-syntax"
    assert err.line is not None and err.line >= 3
    assert err.message.startswith("invalid YAML: ")


def test_file_too_large_checked_before_parsing(backend: str) -> None:
    body = "a: [" + "x" * 100  # also a syntax error: size wins
    err = refused(body, max_bytes=50)
    assert (err.rule, err.line) == ("file-too-large", None)
    err = refused(body.encode(), max_bytes=50)
    assert err.rule == "file-too-large"
    # multi-byte characters count as bytes
    assert refused("a: " + "é" * 30, max_bytes=50).rule == "file-too-large"
    exact = "a: " + "x" * 47
    assert load(exact, max_bytes=50) == {"a": "x" * 47}
    assert yamlio.MAX_BYTES == 1_000_000
    assert yamlio.MAX_LOCK_BYTES == 50_000_000


def nested_block(depth: int) -> str:
    """A document whose deepest mapping is at ``depth`` (top level = 1)."""
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf: x\n"


def test_depth_limit(backend: str) -> None:
    assert MAX_DEPTH == 32
    data = load(nested_block(MAX_DEPTH - 1))
    for i in range(MAX_DEPTH - 1):
        data = data[f"k{i}"]
    assert data == {"leaf": "x"}
    err = refused(nested_block(MAX_DEPTH))
    assert (err.rule, err.line) == ("too-deep", MAX_DEPTH + 1)
    flow = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load(flow)
    assert refused("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH).rule == "too-deep"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 999_000,
        "a: " + "{" * 999_000,
        "- " * 499_000,
        "a: " + "[a, " * 200_000,
        "&a " * 300_000,
        "!t " * 300_000,
        "? " * 499_000,
    ],
)
def test_pathological_inputs_end_fast(text: str) -> None:
    start = time.perf_counter()
    err = refused(text)
    assert time.perf_counter() - start < 0.5
    assert err.rule in {
        "too-deep",
        "yaml-syntax",
        "not-a-mapping",
        "yaml-alias",
        "yaml-tag",
        "non-scalar-key",
    }


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_refused_fast(backend: str) -> None:
    start = time.perf_counter()
    err = refused(BILLION_LAUGHS)
    assert time.perf_counter() - start < 0.05
    assert (err.rule, err.line) == ("yaml-alias", 1)
    # even without the anchors' definitions being reached first, an alias is refused
    start = time.perf_counter()
    err = refused("x: 1\n" + re.sub(r"&[a-i] ", "", BILLION_LAUGHS))
    assert time.perf_counter() - start < 0.05
    assert (err.rule, err.line) == ("yaml-alias", 3)


def test_load_rejects_non_text_types() -> None:
    with pytest.raises(TypeError):
        load(123)  # type: ignore[arg-type]


# ---------------------------------------------------------------- load_path


def test_load_path(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("python: 3.10\n", encoding="utf-8")
    assert load_path(path) == {"python": "3.10"}
    assert load_path(str(path), lines=False) == {"python": "3.10"}
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    err = path_refused(path)
    assert (err.file, err.line, err.rule) == (str(path), 2, "duplicate-key")
    err = path_refused(path, file="envs/env.yaml")
    assert err.file == "envs/env.yaml"


def test_load_path_size_limit_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.conda-lock.yml"
    with open(big, "wb") as fh:  # sparse: 2 MB of NULs that are never read
        fh.truncate(2_000_000)
    err = path_refused(big)
    assert (err.rule, err.file) == ("file-too-large", str(big))
    assert "2000000" in err.message
    ok = tmp_path / "lock.yml"
    ok.write_text("package: [" + ", ".join(["x"] * 400_000) + "]\n")
    assert path_refused(ok).rule == "file-too-large"
    assert len(load_path(ok, max_bytes=yamlio.MAX_LOCK_BYTES, lines=False)["package"]) == 400_000


def test_load_path_unreadable(tmp_path: Path) -> None:
    err = path_refused(tmp_path / "missing.yaml")
    assert (err.rule, err.file) == ("file-unreadable", str(tmp_path / "missing.yaml"))
    assert path_refused(tmp_path).rule == "file-unreadable"


# ---------------------------------------------------------------- dump


def test_dump_is_plain_block_ordered_and_quotes_lookalikes() -> None:
    data = {
        "version": "1",
        "zeta": "no",
        "alpha": {"req_id": "1.10", "full_id": None, "when": "2024-01-01", "empty": ""},
        "list": ["a", "0755", "y", "1e3", "ünïcode", "sha256:ab", "multi\nline\n"],
    }
    text = dump(data)
    assert text == (
        "version: '1'\n"
        "zeta: 'no'\n"
        "alpha:\n"
        "  req_id: '1.10'\n"
        "  full_id: null\n"
        "  when: '2024-01-01'\n"
        "  empty: ''\n"
        "list:\n"
        "- a\n"
        "- '0755'\n"
        "- 'y'\n"
        "- '1e3'\n"
        "- ünïcode\n"
        "- sha256:ab\n"
        "- |\n"
        "  multi\n"
        "  line\n"
    )
    assert load(text) == data
    assert yaml.safe_load(text) == data  # a YAML 1.1 reader keeps the strings


def test_dump_never_writes_aliases_and_accepts_loaded_data() -> None:
    shared = ["x", "y"]
    text = dump({"a": shared, "b": shared, "c": ("t",)})
    assert "&" not in text and "*" not in text
    assert load(text) == {"a": ["x", "y"], "b": ["x", "y"], "c": ["t"]}
    loaded = load(ENV)
    assert load(dump(loaded)) == loaded
    assert dump(loaded) == dump(load(ENV, lines=False))


def test_dump_rejects_objects() -> None:
    with pytest.raises(TypeError):
        dump({"a": object()})


# ---------------------------------------------------------------- properties

TRICKY = st.sampled_from(
    [
        "no",
        "yes",
        "on",
        "off",
        "y",
        "n",
        "1.10",
        "0755",
        "0x1F",
        "0o17",
        "1e3",
        "1_0",
        ".inf",
        "-.inf",
        ".nan",
        "null",
        "Null",
        "~",
        "",
        " ",
        " leading space",
        "trailing space ",
        "a: b",
        "#x",
        "x #y",
        "- x",
        "? x",
        "[x]",
        "{x}",
        "&a",
        "*a",
        "!t",
        "|",
        ">",
        "'",
        '"',
        "%x",
        "@x",
        "`x",
        "<<",
        "=",
        "2024-01-01",
        "12:30",
        "true",
        "False",
        "multi\nline",
        "multi\nline\n",
        "\n",
        "\n\nx\n\n",
        " x\n y",
        "x \n y",
        "tab\there",
        "a\rb",
        "a\x85b",
        "a\u2028b",
        "\ufeffbom",
        "é\u00a0ü",
    ]
)
TEXT = st.one_of(TRICKY, st.text(max_size=20))
SCALAR = st.one_of(st.none(), TEXT)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(TEXT, inner, max_size=4),
    ),
    max_leaves=12,
)
DOC = st.dictionaries(TEXT, VALUE, max_size=6)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(DOC)
def test_dump_load_round_trip(data: dict[str, Any]) -> None:
    text = dump(data)
    assert load(text) == data
    assert load(text, lines=False) == data
    assert yaml.safe_load(text) == data  # PyYAML's YAML 1.1 resolver retypes nothing


@settings(max_examples=40, deadline=None)
@given(DOC)
def test_dump_load_round_trip_pure_python(data: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yamlio, "_CParser", None)
        assert load(dump(data)) == data


def check_total(text: str | bytes) -> None:
    """load() returns a mapping or raises YamlError, nothing else."""
    for lines in (True, False):
        try:
            result = load(text, lines=lines)
        except YamlError as err:
            assert err.rule and err.fix
        else:
            assert isinstance(result, dict)


YAMLISH = st.text(alphabet="ab1~ :-?[]{},#&*!|>'\"\n\t%@<=.\\\x00\x85é", max_size=60)


@FAST
@given(st.text())
def test_fuzz_text_only_yamlerror(text: str) -> None:
    check_total(text)


@FAST
@given(st.binary())
def test_fuzz_binary_only_yamlerror(data: bytes) -> None:
    check_total(data)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_fuzz_yamlish_only_yamlerror(text: str) -> None:
    check_total(text)
    check_total(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=60, deadline=None)
@given(YAMLISH)
def test_fuzz_pure_python_backend(text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yamlio, "_CParser", None)
        check_total(text)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abc", min_size=1, max_size=3),
        st.text(alphabet="01.ny", max_size=4),
        max_size=8,
    )
)
def test_backends_agree(data: dict[str, str]) -> None:
    text = "\n".join(f"{k}: {v}" for k, v in data.items()) + "\n"
    try:
        expected: Any = load(text)
    except YamlError as err:
        expected = err.rule
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yamlio, "_CParser", None)
        try:
            got: Any = load(text)
        except YamlError as err:
            got = err.rule
    assert got == expected


# ---------------------------------------------------------------- speed


def make_env(n_lines: int) -> str:
    out = ["name: team/project/env", "tags:"]
    i = 0
    while len(out) < n_lines:
        out += [
            f"  v{i}:",
            "    python: '3.11'",
            "    channels: [conda-forge, bioconda]",
            "    dependencies:",
        ]
        out += [f"      - pkg{j}>=1.{j}.*  # why" for j in range(15)]
        i += 1
    return "\n".join(out[:n_lines]) + "\n"


@pytest.mark.skipif(not yamlio.HAVE_LIBYAML, reason="PyYAML built without libyaml")
def test_300_line_env_file_loads_fast() -> None:
    text = make_env(300)
    load(text)
    best = min(timed(load, text) for _ in range(20))
    assert best < 0.005  # ~0.3 ms measured; generous for loaded CI machines


def timed(fn: Any, arg: Any) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start
