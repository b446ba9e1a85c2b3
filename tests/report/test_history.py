"""``envctl history``: positions of tags read from real git history."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.names import parse_alias
from envctl.report.history import tag_history
from envctl.resolve.lockfile import read_lock

from .conftest import ReportRepo


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def ids_of(report_repo: ReportRepo, tag: str) -> dict[str, str]:
    lock = read_lock(report_repo.lock(tag).read_bytes())
    return {p: f"{lock.req_id(p)}:{lock.recorded_full_id(p)}" for p in lock.platforms}


@pytest.mark.slow
def test_pointer_moved_three_times(report_repo: ReportRepo) -> None:
    main = report_repo.commits["stable-v3"]
    history = tag_history(report_repo.root, parse_alias("team/app:stable"), main, mutable=True,
                          branch="main")
    assert history.kind == "pointer"
    got = [(e.event, e.target, e.author, e.email, e.date, e.message, e.commit)
           for e in history.entries]
    # The description-only edit between the moves touched the file but not the tag.
    assert got == [
        ("created", "v1", "Alice Admin", "alice@example.org", "2024-01-01T10:00:00Z",
         "Add team/app v1-v4, stable -> v1", report_repo.commits["add"]),
        ("moved", "v2", "Bob Builder", "bob@example.org", "2024-02-01T09:30:00Z",
         "Move stable to v2", report_repo.commits["stable-v2"]),
        ("moved", "v3", "Carol Coder", "carol@example.org", "2024-03-01T12:00:00Z",
         "Move stable to v3", report_repo.commits["stable-v3"]),
    ]
    # Each position carries the ids its target resolved to.
    assert [e.ids for e in history.entries] == [ids_of(report_repo, t) for t in
                                                 ("v1", "v2", "v3")]


@pytest.mark.slow
def test_history_stops_at_the_revision_read(report_repo: ReportRepo) -> None:
    history = tag_history(report_repo.root, parse_alias("team/app:stable"),
                          report_repo.commits["describe"], mutable=True)
    assert [e.target for e in history.entries] == ["v1", "v2"]
    pr = tag_history(report_repo.root, parse_alias("team/app:stable"),
                     report_repo.commits["pr-good"], mutable=True)
    assert [(e.event, e.target) for e in pr.entries][-1] == ("moved", "v2")


@pytest.mark.slow
def test_immutable_tag_added_then_resolved(report_repo: ReportRepo) -> None:
    history = tag_history(report_repo.root, parse_alias("team/app:v2"),
                          report_repo.commits["stable-v3"], mutable=False)
    assert history.kind == "immutable"
    assert [(e.event, e.commit, e.author) for e in history.entries] == [
        ("added", report_repo.commits["add"], "Alice Admin"),
        ("resolved", report_repo.commits["lock"], "envctl CI"),
    ]
    assert history.entries[1].ids == ids_of(report_repo, "v2")


@pytest.mark.slow
def test_cli_history_json_and_table(in_catalog: Path, report_repo: ReportRepo) -> None:
    code, out = invoke("history", "team/app:stable", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["alias", "kind", "mutable", "branch", "rev", "entries"]
    assert (data["alias"], data["kind"], data["mutable"], data["branch"]) == (
        "team/app:stable", "pointer", True, "main")
    assert data["rev"] == report_repo.commits["stable-v3"]
    assert [e["target"] for e in data["entries"]] == ["v1", "v2", "v3"]
    assert list(data["entries"][0]) == ["commit", "author", "email", "date", "message",
                                        "event", "target", "ids"]
    code, out = invoke("history", "team/app:stable")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("team/app:stable (pointer) on main at ")
    assert [line.split("│")[1].strip() for line in lines if "│" in line and "→" in line] == [
        "created", "moved", "moved"]
    # A tag never declared is not found, as 'show' says it (exit 1, one line).
    code, out = invoke("history", "team/app:v9")
    assert (code, out) == (1, "error: envs/team/app.yaml [v9]: team/app:v9 was never declared "
                              "on main [not-found] — team/app has tags: v1, v2, v3, v4, "
                              "stable\n")
    code, out = invoke("history", "team/nope:v1")
    assert code == 1 and "team/nope:v1 was never declared on main" in out
    # No tag: 'show''s rule; without a 'latest', the newest frozen immutable tag.
    code, out = invoke("history", "team/app", "--json")
    assert code == 0 and json.loads(out)["alias"] == "team/app:v4"
    code, out = invoke("history", "team/app")
    assert out.splitlines()[0] == ("team/app means team/app:v4 (no 'latest' tag: the newest "
                                   "frozen tag)")
    code, out = invoke("history", "team/app:stable", "--rev", "pr-good", "--json")
    assert [e["target"] for e in json.loads(out)["entries"]] == ["v1", "v2", "v3", "v2"]


@pytest.mark.slow
def test_a_tag_only_in_the_work_tree_says_so(report_repo: ReportRepo, tmp_path: Path) -> None:
    import shutil

    clone = tmp_path / "catalog"
    shutil.copytree(report_repo.root, clone)
    env = clone / "envs/team/app.yaml"
    env.write_text(env.read_text() + "  v5: {dependencies: [python=3.11]}\n")
    code, out = invoke("-C", str(clone), "history", "team/app:v5")
    assert (code, out) == (1, "error: envs/team/app.yaml [v5]: team/app:v5 was never declared "
                              "on main [not-found] — it is only in the work tree so far, and "
                              "history reads main: merge it first, or pass --rev HEAD for the "
                              "commits made since\n")


# -- a long history, generated with git fast-import -------------------------------------------


def env_file(target: str, note: int) -> str:
    return (f"description: edit {note}\nowners: [team]\ntags:\n"
            "  v1: {dependencies: [python]}\n  v2: {dependencies: [python]}\n"
            "  v3: {dependencies: [python]}\n"
            f"  stable: {{points_to: {target}}}\n"
            "  nightly: {dependencies: [python, numpy]}\n")


def fast_import(repo: Path, commits: int) -> int:
    """``commits`` commits on main with the catalog in ``catalog/``: every third moves
    stable (v1 -> v2 -> v3 -> v1...), the others edit the description or another file.
    Returns how many times stable moved (its creation included)."""
    chunks: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        chunks.append(b"data %d\n" % len(raw) + raw + b"\n")

    moves = 0
    target = "v1"
    for i in range(commits):
        when = 1_700_000_000 + i * 60
        who = ["Ann <ann@example.org>", "Ben <ben@example.org>"][i % 2]
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(f"author {who} {when} +0000\ncommitter {who} {when} +0000\n".encode())
        data(f"commit {i}")
        if i == 0:
            chunks.append(b"M 100644 inline catalog/catalog.yaml\n")
            data("channels: {main: 'https://conda.example.org/main'}\nbranch: main\n"
                 "mutable_tags: [latest, stable, nightly]\n")
        if i % 3 == 0:
            target = ("v1", "v2", "v3")[moves % 3]
            moves += 1
            chunks.append(b"M 100644 inline catalog/envs/team/app.yaml\n")
            data(env_file(target, i))
        elif i % 3 == 1:
            chunks.append(b"M 100644 inline catalog/envs/team/app.yaml\n")
            data(env_file(target, i))
        else:
            chunks.append(b"M 100644 inline catalog/notes.txt\n")
            data(f"note {i}\n")
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(chunks),
                   check=True)
    return moves


def test_long_history_is_fast_and_complete(tmp_path: Path) -> None:
    repo = tmp_path / "big"
    moves = fast_import(repo, 3000)
    start = time.perf_counter()
    history = tag_history(repo, parse_alias("team/app:stable"), "main", mutable=True,
                          subdir="catalog", branch="main")
    elapsed = time.perf_counter() - start
    assert len(history.entries) == moves == 1000
    assert [e.target for e in history.entries[:4]] == ["v1", "v2", "v3", "v1"]
    assert [e.event for e in history.entries[:2]] == ["created", "moved"]
    assert history.entries[-1].message == "commit 2997"
    assert {e.author for e in history.entries} == {"Ann", "Ben"}
    # Two git processes and one parse per version of the file: well under a second here;
    # the bound is loose so a busy CI machine does not fail it.
    assert elapsed < 5, elapsed
    rolling = tag_history(repo, parse_alias("team/app:nightly"), "main", mutable=True,
                          subdir="catalog")
    assert [(e.event, e.message) for e in rolling.entries] == [("created", "commit 0")]


def test_rolling_tag_relocks_and_respecs(tmp_path: Path) -> None:
    """A rolling tag's history follows its spec in the env file and its ids in the meta."""
    repo = tmp_path / "cat"
    (repo / "envs/team").mkdir(parents=True)
    (repo / "locks/team/app").mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)

    def meta(full: str) -> str:
        return ("platforms:\n  linux-64:\n"
                f"    req_id: {'1' * 40}\n    full_id: {full * 40}\n")

    steps = [
        ("envs/team/app.yaml", "tags:\n  nightly: {dependencies: [python]}\n", "Add nightly"),
        ("locks/team/app/nightly.meta.yaml", meta("a"), "Lock nightly"),
        ("locks/team/app/nightly.meta.yaml", meta("b"), "Relock nightly"),
        ("locks/team/app/other.meta.yaml", meta("c"), "Lock another tag"),
        ("envs/team/app.yaml", "tags:\n  nightly: {dependencies: [python, numpy]}\n",
         "Add numpy to nightly"),
    ]
    for rel, text, message in steps:
        (repo / rel).write_text(text)
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "--quiet", "-m", message], cwd=repo, check=True)
    history = tag_history(repo, parse_alias("team/app:nightly"), "main", mutable=True)
    assert history.kind == "rolling"
    assert [(e.event, e.message) for e in history.entries] == [
        ("created", "Add nightly"),
        ("relocked", "Lock nightly"),
        ("relocked", "Relock nightly"),
        ("respecified", "Add numpy to nightly"),
    ]
    assert history.entries[2].ids == {"linux-64": f"{'1' * 40}:{'b' * 40}"}
