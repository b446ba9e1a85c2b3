"""Env and alias record models: validation, deterministic bytes, versioning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from envctl.errors import StoreError
from envctl.store.records import (
    AliasRecord,
    EnvRecord,
    dump_record,
    load_alias_record,
    load_env_record,
)
from envctl.testing.storekit import alias_record, env_record, make_pkg

LOCK = "a" * 64


def _env(tmp_path: Path, names: tuple[str, ...] = ("b-1-0.conda", "a-1-0.conda")) -> EnvRecord:
    return env_record([make_pkg(tmp_path, n) for n in names], LOCK)


def test_env_record_bytes_do_not_depend_on_package_order(tmp_path: Path) -> None:
    forward = _env(tmp_path)
    backward = _env(tmp_path, ("a-1-0.conda", "b-1-0.conda"))
    assert dump_record(forward) == dump_record(backward)
    assert [p.filename for p in forward.packages] == ["a-1-0.conda", "b-1-0.conda"]
    data = dump_record(forward)
    assert data.endswith(b"}\n")
    assert list(json.loads(data)) == sorted(json.loads(data))
    assert load_env_record(data, where="x") == forward


def test_env_record_full_id_must_match_its_packages(tmp_path: Path) -> None:
    data = json.loads(dump_record(_env(tmp_path)))
    data["packages"] = data["packages"][:1]
    with pytest.raises(StoreError) as info:
        load_env_record(json.dumps(data).encode(), where="envs/linux-64/x/y.json")
    assert info.value.rule == "invalid-record"
    assert "does not match its packages" in info.value.message
    assert info.value.file == "envs/linux-64/x/y.json"


def test_env_record_refuses_duplicate_files_and_bad_hashes(tmp_path: Path) -> None:
    record = _env(tmp_path)
    data = record.model_dump(mode="json")
    twice = dict(data, packages=[data["packages"][0], data["packages"][0]])
    with pytest.raises(ValidationError, match="listed twice"):
        EnvRecord.model_validate(twice)
    bad = dict(data, lock_sha256="ABC")
    with pytest.raises(ValidationError, match="64 lower-case hex"):
        EnvRecord.model_validate(bad)
    with pytest.raises(ValidationError, match="unknown platform"):
        EnvRecord.model_validate(dict(data, platform="linux-128"))
    pkg = dict(data["packages"][0], filename="../x.conda")
    with pytest.raises(ValidationError, match="contains '/'"):
        EnvRecord.model_validate(dict(data, packages=[pkg]))


def test_newer_record_version_says_upgrade(tmp_path: Path) -> None:
    data = json.loads(dump_record(_env(tmp_path)))
    data["version"] = "2"
    with pytest.raises(StoreError) as info:
        load_env_record(json.dumps(data).encode(), where="k")
    assert "upgrade envctl" in info.value.message


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    data = json.loads(dump_record(_env(tmp_path)))
    data["surprise"] = 1
    with pytest.raises(StoreError, match="surprise"):
        load_env_record(json.dumps(data).encode(), where="k")


def test_alias_record(tmp_path: Path) -> None:
    env = _env(tmp_path)
    record = alias_record(env, name="team/proj/env", tag="stable", mutable=True, target="v2")
    assert record.alias == "team/proj/env:stable"
    assert load_alias_record(dump_record(record), where="k") == record
    later = alias_record(
        env,
        name="team/proj/env",
        tag="stable",
        mutable=True,
        target="v2",
        commit="e" * 40,
        published_at="2027-01-01T00:00:00Z",
    )
    assert record.same_target(later)
    assert not record.same_target(
        alias_record(env, name="team/proj/env", tag="stable", mutable=True)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Team/Env"}, "name"),
        ({"name": "team/../env"}, "name"),
        ({"tag": "v1:x"}, "tag"),
        ({"commit": "abc"}, "full git commit id"),
        ({"platforms": {}}, "at least one platform"),
        ({"mutable": False, "target": "v1"}, "only a mutable tag can point"),
    ],
)
def test_alias_record_validation(tmp_path: Path, change: dict, message: str) -> None:
    data = alias_record(_env(tmp_path)).model_dump(mode="json")
    with pytest.raises(ValidationError, match=message):
        AliasRecord.model_validate({**data, **change})


def test_sha256_commit_ids_are_accepted(tmp_path: Path) -> None:
    assert alias_record(_env(tmp_path), commit="f" * 64).commit == "f" * 64


def test_not_json_is_a_clear_error() -> None:
    with pytest.raises(StoreError) as info:
        load_alias_record(b"\xff\xfe", where="aliases/a/b.json")
    assert info.value.rule == "invalid-record"
    assert info.value.file == "aliases/a/b.json"
