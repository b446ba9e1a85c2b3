"""Faults: the store failing mid-upload, a tag that does not resolve, two CI jobs racing."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from envctl.errors import StoreError
from envctl.store import LocalStore, open_store
from envctl.testing.pushes import git
from envctl.testing.s3server import serve_s3

from .conftest import NOW

pytestmark = pytest.mark.slow

ALICE = "Alice Doe <alice@example.org>"
# 11 package files: python and libalpha/libbeta/libgamma per platform, 3 noarch ones.
BIG = {"v1": {"dependencies": ["python=3.11", "tinycli", "libalpha"]}}
FILES = 11


class FailingStore(LocalStore):
    """A local store whose disk "fills up" after ``limit`` package files."""

    def __init__(self, root: Path, limit: int) -> None:
        super().__init__(root)
        self.limit = limit
        self.count = 0
        self.lock = threading.Lock()

    def put_package(self, path: Path, sha256: str, filename: str | None = None) -> bool:
        with self.lock:
            self.count += 1
            if self.count > self.limit:
                raise StoreError(f"no space left on device writing {filename}", rule="store-io",
                                 fix="free some space, then rerun")
        return super().put_package(path, sha256, filename)


def packages_in(store) -> int:
    return len([k for k in store.list("pkgs/")])


def test_store_fails_mid_upload_then_rerun_sends_the_rest(world) -> None:
    a = world.clone("a")
    world.add_env(a, "team/big", BIG, author=ALICE)
    ci = world.clone("ci")
    before = world.head()

    failing = FailingStore(world.store.root, limit=4)
    report, _ = world.ci(ci, store=failing)
    assert report.exit_code == 1 and not report.landed and report.commit is None
    assert world.head() == before  # nothing committed
    [error] = report.errors
    assert error["rule"] == "store-io" and "no space left on device" in error["message"]
    assert "no space left on device" in report.to_markdown()
    assert packages_in(world.store) == 4

    again, _ = world.ci(ci)
    assert again.exit_code == 0 and again.landed, again.errors
    [outcome] = again.outcomes
    assert (outcome.uploaded, outcome.skipped) == (FILES - 4, 4)  # only what was missing
    assert packages_in(world.store) == FILES
    assert world.head() == again.commit


def test_s3_server_stops_mid_upload_then_rerun_completes(world, s3_url, monkeypatch) -> None:
    a = world.clone("a")
    world.add_env(a, "team/big", BIG, author=ALICE)
    ci = world.clone("ci")
    before = world.head()

    with serve_s3() as server:  # a private server, so stopping it harms no other test
        monkeypatch.setenv("ENVCTL_S3_ENDPOINT_URL", server.endpoint_url)
        store = open_store(s3_url)

        def stop_after_three(alias: str, item) -> None:
            if item.done == 3:
                server.stop()

        report, _ = world.ci(ci, store=store, on_upload=stop_after_three)
    assert report.exit_code == 1 and report.commit is None and world.head() == before
    [error] = report.errors
    assert error["rule"] == "store-unreachable", error
    assert "rerun" in error["fix"]

    with serve_s3() as server:  # moto keeps its buckets per process: the objects are there
        monkeypatch.setenv("ENVCTL_S3_ENDPOINT_URL", server.endpoint_url)
        store = open_store(s3_url)
        present = packages_in(store)
        assert 3 <= present < FILES
        again, _ = world.ci(ci, store=store)
        assert again.exit_code == 0 and again.landed, again.errors
        [outcome] = again.outcomes
        assert (outcome.uploaded, outcome.skipped) == (FILES - present, present)
        assert packages_in(store) == FILES
        assert store.get_alias("team/big", "v1").commit == world.head()


def test_a_tag_that_fails_stays_pending_and_the_rest_lock(world) -> None:
    a = world.clone("a")
    world.add_env(a, "team/good", {"v1": {"dependencies": ["python=3.11"]}}, author=ALICE)
    world.add_env(a, "team/bad", {"v1": {"dependencies": ["python=3.11", "tinynumm"]}},
                  author=ALICE)
    ci = world.clone("ci")

    report, _ = world.ci(ci)
    assert report.exit_code == 1 and report.landed
    assert report.locked == ["team/good:v1"]
    [failed] = report.failed
    assert failed.alias == "team/bad:v1" and failed.error["rule"] == "unknown-package"
    assert "did you mean tinynum" in failed.error["fix"]
    assert list(report.pending) == ["team/bad:v1"]
    message = git(world.server, "log", "-1", "--format=%B", "main").stdout
    assert "Envctl-Pending: team/bad:v1" in message
    markdown = report.to_markdown()
    assert "### Failures" in markdown and "`team/bad:v1` `unknown-package`" in markdown
    assert world.store.find_alias("team/good", "v1") is not None
    assert world.store.find_alias("team/bad", "v1") is None

    # The next run (no new push) picks the pending tag up from the trailer; still failing,
    # it commits nothing and says so.
    head = world.head()
    again, _ = world.ci(ci)
    assert again.exit_code == 1 and again.commit is None and world.head() == head
    assert [o.alias for o in again.failed] == ["team/bad:v1"]
    assert again.plan["tags"][0]["reason"] == "pending"

    # Fixed by its owner: locked, and nothing is pending any more.
    world.add_env(a, "team/bad", {"v1": {"dependencies": ["python=3.11", "tinynum"]}},
                  author=ALICE)
    fixed, _ = world.ci(ci)
    assert fixed.exit_code == 0 and fixed.locked == ["team/bad:v1"] and fixed.pending == {}
    assert "Envctl-Pending" not in git(world.server, "log", "-1", "--format=%B", "main").stdout


def test_two_ci_jobs_race_the_loser_overwrites_nothing(world) -> None:
    a = world.clone("a")
    world.add_env(a, "team/env", {"v1": {"dependencies": ["python=3.11", "tinynum"]}},
                  author=ALICE)
    first, second = world.clone("ci1"), world.clone("ci2")
    landed: list[str] = []

    def other_job_lands_first(attempt: int, candidate) -> None:
        if attempt == 1:
            # Another time: its meta differs, so its commit is not byte-identical to ours.
            report, _ = world.ci(first, now=NOW + timedelta(hours=1))
            assert report.landed
            landed.append(report.commit)

    report, _ = world.ci(second, before_push=other_job_lands_first)
    assert report.exit_code == 0 and report.races == 1
    assert report.commit is None and not report.landed  # the tag is frozen now: nothing to do
    assert world.head() == landed[0]
    lock = "locks/team/env/v1.conda-lock.yml"
    assert git(world.server, "log", "--format=%H", "main", "--", lock).stdout.split() == landed

