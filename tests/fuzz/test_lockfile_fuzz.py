"""Fuzz the fast conda-lock v1 reader the hook, lint and show use (``read_lock``).

Arbitrary bytes, and valid locks mutated at the byte, line and structure level, end in
``LockData`` or a clean error: ``LockfileError`` for a lockfile that is not what it should
be, or the loader's ``YamlError`` (both ``EnvctlError``) for bytes that are not safe YAML.
On what parsed, computing ids raises ``LockfileError`` or ``ValueError`` (a malformed
``sha256``; ``envctl.lockcheck`` turns both into refusals) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from envctl import yamlio
from envctl.errors import LockfileError, YamlError
from envctl.resolve.lockfile import LockData, read_lock
from envctl.testing.handlocks import config_yaml, env_yaml, lock_files, package

_name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
FUZZ = settings.get_profile(_name if _name in ("fuzz", "long") else "fuzz")


def _valid_lock() -> str:
    files = {
        "catalog.yaml": config_yaml(platforms=("linux-64", "osx-arm64")),
        "envs/team/app.yaml": env_yaml({"v1": {"dependencies": ["python=3.11", "numpy"],
                                               "pypi": ["itsdangerous==2.1.2"]}}),
    }
    packages = [package(n, p) for n in ("python", "numpy", "libzlib")
                for p in ("linux-64", "osx-arm64")]
    packages.append(package("itsdangerous", "linux-64", manager="pip", md5=None,
                            url="https://pypi.example.org/p/itsdangerous-2.1.2.whl"))
    return lock_files(files, "team/app:v1", packages=packages)[
        "locks/team/app/v1.conda-lock.yml"]


VALID = _valid_lock()
VALID_DOC = yamlio.load(VALID, lines=False)


def check(data: bytes | str) -> None:
    try:
        lock = read_lock(data, file="locks/team/app/v1.conda-lock.yml")
    except (LockfileError, YamlError) as exc:
        assert exc.file == "locks/team/app/v1.conda-lock.yml"
        assert exc.render()
        return
    assert isinstance(lock, LockData)
    for platform in {p.platform for p in lock.packages} | set(lock.platforms):
        lock.for_platform(platform)
        lock.req_id(platform)
        lock.recorded_full_id(platform)
        with contextlib.suppress(LockfileError, ValueError):
            assert len(lock.full_id(platform)) == 40
    for locked in lock.packages:
        assert locked.filename is not None
        locked.subdir  # noqa: B018 - a property that parses the URL
        assert locked.to_dict()["name"] == locked.name
    lock.alias  # noqa: B018


def test_the_valid_lock_reads() -> None:
    lock = read_lock(VALID)
    assert len(lock.packages) == 7 and lock.alias == "team/app:v1"


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.data())
def test_byte_mutations_of_a_valid_lock(data: st.DataObject) -> None:
    raw = bytearray(VALID.encode())
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        how = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]), label="how")
        if how == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif how == "delete":
            del raw[at : at + data.draw(st.integers(1, 40))]
        elif how == "insert":
            raw[at:at] = data.draw(st.sampled_from(
                [b": ", b"- ", b"\n", b"  ", b"&a ", b"*a", b"!!str ", b"{", b"'", b"\x00",
                 b"\xff", b"\n---\n", b"<<: x\n", b"~"]))
        else:
            del raw[at:]
        if not raw:
            break
    check(bytes(raw))


@FUZZ
@given(st.data())
def test_line_mutations_of_a_valid_lock(data: st.DataObject) -> None:
    lines = VALID.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        if not lines:
            break
        at = data.draw(st.integers(0, len(lines) - 1), label="line")
        how = data.draw(st.sampled_from(["drop", "duplicate", "dedent", "indent", "swap"]))
        if how == "drop":
            del lines[at]
        elif how == "duplicate":
            lines.insert(at, lines[at])
        elif how == "dedent":
            lines[at] = lines[at].lstrip(" ")
        elif how == "indent":
            lines[at] = "  " + lines[at]
        else:
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
    check("".join(lines))


JUNK = st.one_of(st.none(), st.text(max_size=8), st.lists(st.text(max_size=4), max_size=2),
                 st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2))


@FUZZ
@given(st.data())
def test_structure_mutations_of_a_valid_lock(data: st.DataObject) -> None:
    """Replace or delete one node anywhere in the document, then write it back as YAML."""
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
            parent[key] = data.draw(JUNK)
    check(yamlio.dump(doc))


def test_pathological_lock_sizes_are_refused_quickly() -> None:
    """A lock of many tiny packages is read; one over the size limit is refused unread."""
    entry = VALID_DOC["package"][0]
    many = dict(VALID_DOC, package=[dict(entry, name=f"p{i}") for i in range(2000)])
    assert len(read_lock(yamlio.dump(many)).packages) == 2000
    huge = b"x" * (yamlio.MAX_LOCK_BYTES + 1)
    try:
        read_lock(huge)
    except YamlError as exc:
        assert exc.rule == "file-too-large"
    else:
        raise AssertionError("an oversized lock was read")
