"""What a reference means: catalog aliases, pointers, ids, the store alone, git URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl import api
from envctl.errors import EnvctlError
from envctl.names import parse_env_id
from envctl.store import LocalStore
from envctl.store.records import AliasRecord, AliasTarget, EnvRecord, PackageRecord
from envctl.testing.pytest_plugin import git

from .conftest import Resolved

pytestmark = pytest.mark.slow


def test_alias_pointer_and_id(resolved_catalog: Resolved) -> None:
    root = resolved_catalog.root
    v1 = api.resolve_ref("team/app:v1", catalog=root)
    assert (v1.alias, v1.platform, v1.mutable, v1.source) == ("team/app:v1", "linux-64", False,
                                                              "catalog")
    assert v1.env_id == resolved_catalog.ids["v1"]["linux-64"]
    stable = api.resolve_ref("team/app:stable", catalog=root)
    assert (stable.asked, stable.alias, stable.mutable) == ("team/app:stable", "team/app:v1", True)
    assert stable.env_id == v1.env_id
    latest = api.resolve_ref("team/app", catalog=root)  # no latest: the newest frozen tag
    assert latest.alias == "team/app:v2"
    by_id = api.resolve_ref(resolved_catalog.ids["v1"]["osx-arm64"], catalog=root)
    assert (by_id.alias, by_id.platform) == ("team/app:v1", "osx-arm64")


@pytest.mark.parametrize(("ref", "rule", "where"), [
    (" team/app:v1", "invalid-name", '" " at position 0'),
    ("team/app:v1\n", "invalid-tag", '"\\n" at position 11'),
    ("team/app:v1 ", "invalid-tag", '" " at position 11'),
])
def test_whitespace_is_refused_not_stripped(resolved_catalog: Resolved, ref: str, rule: str,
                                            where: str) -> None:
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref(ref, catalog=resolved_catalog.root)
    assert info.value.rule == rule
    assert where in info.value.message and 'did you mean "team/app:v1"' in info.value.message


def test_a_shortened_id_says_ids_are_whole(resolved_catalog: Resolved, tmp_path: Path) -> None:
    req, full = resolved_catalog.ids["v1"]["linux-64"].split(":")
    short = f"{req[:8]}:{full[:8]}"  # what 'envctl envs' prints
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref(short, catalog=resolved_catalog.root)
    assert info.value.rule == "short-id"
    assert info.value.render() == (
        f"{short} names no environment, and a resolved id must be whole: req_id:full_id, 40 "
        "hex digits each (a shortened id is only for reading) [short-id] — 'envctl envs "
        "--full' (or --json) prints the whole ids of local environments, 'envctl info "
        "--prefix DIR' the id of one, 'envctl show NAME:TAG' those of a tag")
    # The store alone answers the same way.
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref(short, store=str(tmp_path / "store"))
    assert info.value.rule == "short-id"
    # A name that is not hex keeps the catalog's own error.
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref("team/nope:v1", catalog=resolved_catalog.root)
    assert (info.value.rule, info.value.message) == ("not-found", "no environment named team/nope")


def test_catalog_from_the_environment_variable(
    resolved_catalog: Resolved, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVCTL_CATALOG", str(resolved_catalog.root))
    assert api.resolve_ref("team/app:v2").alias == "team/app:v2"


def test_no_catalog_and_no_store_says_how_to_name_one() -> None:
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref("team/app:v1")
    assert info.value.rule == "not-a-catalog"


def publish(resolved: Resolved, store: LocalStore, tag: str, *, alias_tag: str | None = None,
            target: str | None = None) -> None:
    """What CI publishes for a tag: lock, packages, environment records, alias record."""
    data = (resolved.root / f"locks/team/app/{tag}.conda-lock.yml").read_bytes()
    lock_sha = store.put_lock(data)
    lock = resolved.lock(tag)
    platforms = {}
    for platform, env_id in resolved.ids[tag].items():
        ids = parse_env_id(env_id)
        store.put_env_record(EnvRecord(
            platform=platform, req_id=ids.req_id, full_id=ids.full_id, alias=f"team/app:{tag}",
            lock_sha256=lock_sha,
            packages=[PackageRecord(filename=p.filename, sha256=p.sha256 or "", size=1,
                                    url=p.url) for p in lock.for_platform(platform)],
            resolved_at="2025-01-02T03:04:05Z", resolved_by="ci", envctl_version="0",
        ), check_artifacts=False)
        platforms[platform] = AliasTarget(req_id=ids.req_id, full_id=ids.full_id)
    store.put_alias(AliasRecord(
        name="team/app", tag=alias_tag or tag, mutable=alias_tag is not None, target=target,
        platforms=platforms, lock_sha256=lock_sha, commit="0" * 40,
        published_at="2025-01-02T03:04:05Z",
    ), check_artifacts=False)


def test_store_alone_answers_without_a_catalog(resolved_catalog: Resolved, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish(resolved_catalog, store, "v1")
    publish(resolved_catalog, store, "v1", alias_tag="stable", target="v1")
    found = api.resolve_ref("team/app:stable", store=str(store.root))
    assert (found.alias, found.source, found.mutable) == ("team/app:v1", "store", True)
    assert found.env_id == resolved_catalog.ids["v1"]["linux-64"]
    by_id = api.resolve_ref(resolved_catalog.ids["v1"]["osx-arm64"], store=store)
    assert (by_id.alias, by_id.platform) == ("team/app:v1", "osx-arm64")
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref("team/app:v2", store=store)
    assert info.value.rule == "missing-object"


def test_git_url_catalog_follows_the_branch_tip(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(resolved_catalog.root), str(server))
    url = server.as_uri()
    assert api.resolve_ref("team/app:stable", catalog=url).alias == "team/app:v1"
    # Someone moves stable to v2 on the server.
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", url, str(work))
    env_file = work / "envs/team/app.yaml"
    env_file.write_text(env_file.read_text().replace("points_to: v1", "points_to: v2"))
    git(work, "commit", "--quiet", "-am", "stable -> v2")
    git(work, "push", "--quiet", "origin", "main")
    # Without fetching, the cached clone still says v1; a git URL fetches by default.
    assert api.resolve_ref("team/app:stable", catalog=url, fetch=False).alias == "team/app:v1"
    assert api.resolve_ref("team/app:stable", catalog=url).alias == "team/app:v2"


def test_fetch_reads_a_work_tree_at_its_remote_tip(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(resolved_catalog.root), str(server))
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for path in (mine, theirs):
        git(tmp_path, "clone", "--quiet", str(server), str(path))
    env_file = theirs / "envs/team/app.yaml"
    env_file.write_text(env_file.read_text().replace("points_to: v1", "points_to: v2"))
    git(theirs, "commit", "--quiet", "-am", "stable -> v2")
    git(theirs, "push", "--quiet", "origin", "main")
    assert api.resolve_ref("team/app:stable", catalog=mine).alias == "team/app:v1"
    assert api.resolve_ref("team/app:stable", catalog=mine, fetch=True).alias == "team/app:v2"
    # The work tree itself is left as it was.
    assert "points_to: v1" in (mine / "envs/team/app.yaml").read_text()
