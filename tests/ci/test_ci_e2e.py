"""The whole loop with real git: pushes through the hook, CI resolves, uploads, commits back.

The race is deterministic: clone B pushes after CI has prepared its commit and before
CI pushes it — a ``before_push`` callback through the API, a real ``pre-push`` hook in
the CI clone through the CLI.
"""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.check import check_history
from envctl.cli.main import app
from envctl.store import Store, open_store
from envctl.testing.pushes import CI, git

pytestmark = pytest.mark.slow

ALICE = "Alice Doe <alice@example.org>"
BOB = "Bob Roe <bob@example.org>"
ENV_V1 = {"v1": {"dependencies": ["python=3.11", "tinynum"]}, "stable": {"points_to": "v1"}}
OTHER_V1 = {"v1": {"dependencies": ["python=3.11", "libalpha"]}}


def show(world, rev: str, path: str) -> str:
    return git(world.server, "show", f"{rev}:{path}").stdout


def assert_landed(world, store: Store, report) -> str:
    """Both tags locked by one signed CI commit on top of B's push; nothing lost."""
    assert report.errors == [], report.errors
    assert report.landed and report.races == 1 and report.exit_code == 0
    assert sorted(report.locked) == ["team/env:v1", "team/other:v1"]
    head = world.head()
    assert report.commit == head
    # The commit: signed by CI as its committer, on top of B's push, adding locks only.
    fmt = git(world.server, "log", "-1", "--format=%ce%n%s%n%B", head).stdout
    assert fmt.startswith(f"{CI}\nenvctl ci: lock team/env:v1, team/other:v1\n")
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in git(world.server, "cat-file", "-p",
                                                         head).stdout
    parent = git(world.server, "rev-parse", f"{head}^").stdout.strip()
    assert "Add team/other" in git(world.server, "log", "-1", "--format=%s", parent).stdout
    changes = git(world.server, "diff-tree", "--no-commit-id", "-r", "--name-status",
                  head).stdout.split("\n")
    assert sorted(line for line in changes if line) == [
        f"A\tlocks/team/{env}/v1.{kind}"
        for env in ("env", "other") for kind in ("conda-lock.yml", "meta.yaml")
    ]
    for env, who in (("env", ALICE), ("other", BOB)):
        meta = yamlio.load(show(world, head, f"locks/team/{env}/v1.meta.yaml"))
        assert meta["resolved_by"] == who
        for platform, ids in meta["platforms"].items():
            assert f"team/{env}:v1 → {ids['req_id']}:{ids['full_id']} ({platform})" in fmt
        assert f"resolved by {who}" in fmt
        # The store has everything: the alias record names the committed ids.
        record = store.get_alias(f"team/{env}", "v1")
        assert record.commit == head and not record.mutable
        assert {p: str(t) for p, t in record.platforms.items()} == {
            p: f"{i['req_id']}:{i['full_id']}" for p, i in meta["platforms"].items()
        }
        for platform, target in record.platforms.items():
            env_record = store.get_env_record(platform, target.req_id, target.full_id)
            assert env_record.lock_sha256 == meta["lock_sha256"]
            for package in env_record.packages:
                assert store.has_package(package.sha256, package.filename)
    stable = store.get_alias("team/env", "stable")
    assert stable.mutable and stable.target == "v1"
    assert "libalpha" in show(world, head, "envs/team/other.yaml")  # B's push kept
    assert check_history(world.server) == []  # every commit passes the hook's rules
    return head


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, world) -> Store:
    if request.param == "local":
        return world.store
    return open_store(request.getfixturevalue("s3_url"))


def test_race_retry_locks_both_then_second_run_is_noop(world, store: Store) -> None:
    a = world.clone("a")
    world.add_env(a, "team/env", ENV_V1, author=ALICE)
    ci = world.clone("ci")
    b = world.clone("b")
    seen: list[int] = []

    def race(attempt: int, candidate) -> None:
        seen.append(attempt)
        if attempt == 1:  # after CI fetched, planned and signed; before it pushes
            assert [o.alias for o in candidate.kept] == ["team/env:v1"]
            world.add_env(b, "team/other", OTHER_V1, author=BOB)

    report, _ = world.ci(ci, store=store, before_push=race)
    assert seen == [1, 2]
    head = assert_landed(world, store, report)
    # team/env:v1 was resolved and uploaded once; the retry only added team/other:v1.
    uploads = {o.alias: o.uploaded + o.skipped for o in report.outcomes}
    assert uploads["team/env:v1"] > 0 and uploads["team/other:v1"] > 0
    assert git(ci.path, "rev-parse", "HEAD").stdout.strip() == head  # checkout moved
    assert git(ci.path, "status", "--porcelain").stdout == ""

    again, _ = world.ci(ci, store=store)
    assert again.exit_code == 0 and again.commit is None and not again.landed
    assert again.outcomes == [] and world.head() == head
    assert {p.status for p in again.published} == {"unchanged"}


def test_cli_race_with_a_real_pre_push_hook(world, tmp_path) -> None:
    a = world.clone("a")
    world.add_env(a, "team/env", ENV_V1, author=ALICE)
    ci = world.clone("ci")
    b = world.clone("b")
    # B commits now and pushes from inside CI's pre-push hook: after CI fetched and
    # prepared, before its push reaches the server.
    b.git("pull", "--quiet")
    b.write("envs/team/other.yaml", json.dumps({"tags": OTHER_V1}) + "\n")
    b.git("add", "-A")
    b.git("commit", "-q", "-m", "Add team/other",
          env={"GIT_AUTHOR_NAME": "Bob Roe", "GIT_AUTHOR_EMAIL": "bob@example.org"})
    marker = tmp_path / "raced"
    hook = ci.path / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f"[ -e {marker} ] && exit 0\n"
        f"touch {marker}\n"
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        f"git -C {b.path} push -q origin HEAD:main >/dev/null 2>&1\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    summary = tmp_path / "summary.md"
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(app, [
        "--catalog", str(ci.path), "ci", "run", "--store", str(world.store.root),
        "--sign-key", str(world.keys.ci.private), "--report", str(report_path),
        "--summary", str(summary),
    ])
    assert result.exit_code == 0, result.output
    assert marker.exists()
    data = json.loads(report_path.read_text())
    assert data["ok"] and data["races"] == 1 and data["landed"]
    assert sorted(data["locked"]) == ["team/env:v1", "team/other:v1"]
    assert "committed" in result.stdout
    text = summary.read_text()
    assert text.startswith("## envctl ci resolve: ✅ done") and "after 1 lost race(s)" in text
    assert world.head() == data["commit"]

    again = CliRunner().invoke(app, [
        "--catalog", str(ci.path), "ci", "run", "--store", str(world.store.root), "--json",
    ], env={"ENVCTL_CI_SIGNING_KEY": str(world.keys.ci.private)})
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["commit"] is None
    assert world.head() == data["commit"]


def test_plan_json_is_a_matrix(world) -> None:
    a = world.clone("a")
    world.add_env(a, "team/env", ENV_V1, author=ALICE)
    world.add_env(a, "team/ext", {"v1": {"dependencies": ["python=3.11"]},
                                  "v2": {"extends": "v1", "dependencies": ["tinynum"]}},
                  author=ALICE)
    result = CliRunner().invoke(app, ["--catalog", str(a.path), "ci", "plan", "--json",
                                      "--max-jobs", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["count"] == 3 and data["base_kind"] == "none"
    assert data["resolve"] == ["team/env:v1", "team/ext:v1", "team/ext:v2"]
    assert data["publish"] == ["team/env:stable"]
    shards = data["matrix"]["include"]
    # The base and the tag extending it share a shard, base first.
    assert sorted(s["only"] for s in shards) == ["team/env:v1", "team/ext:v1 team/ext:v2"]
