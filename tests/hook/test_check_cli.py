"""``envctl check`` (the CI path), ``check --history``, ``hook install``, ``hook-impl`` and
``codeowners`` through the real CLI, on real repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.hook import MARKER
from envctl.testing.handlocks import env_yaml
from envctl.testing.pushes import CI, ENV, LOCK, Clone, Server, git

runner = CliRunner()


def check(clone: Clone, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", "--repo", str(clone.path), *args])
    return result.exit_code, result.output


def test_check_accepts_a_good_range(clone: Clone) -> None:
    base = clone.git("rev-parse", "HEAD").stdout.strip()
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    code, out = check(clone, "--base", base, "--head", "HEAD")
    assert code == 0, out
    assert "follows the catalog's rules" in out


def test_check_lists_every_violation_and_json(clone: Clone) -> None:
    clone.edit_tags(v1={"dependencies": ["numpy"]}, stable={"points_to": "v9"})
    sha = clone.commit("Break things")
    code, out = check(clone, "--base", "origin/main", "--head", "HEAD")
    assert code == 1
    assert f"refused: {ENV} [v1]: frozen tag team/app:v1 cannot change" in out
    assert "[pointer-missing]" in out and "2 problem(s) in origin/main..HEAD" in out
    code, out = check(clone, "--base", "origin/main", "--head", "HEAD", "--json")
    assert code == 1
    data = json.loads(out)
    assert [d["rule"] for d in data] == ["frozen-tag", "pointer-missing"]
    assert data[0] == {
        "file": ENV, "line": None, "tag": "v1", "rule": "frozen-tag",
        "message": f"frozen tag team/app:v1 cannot change: its lock ({LOCK}) is committed",
        "fix": "add tag v3 instead (only 'retired:' may change on a frozen tag)", "commit": sha,
    }


def test_check_owners_with_pusher(clone: Clone) -> None:
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    args = ("--base", "origin/main", "--head", "HEAD", "--json")
    assert check(clone, *args)[0] == 0
    code, out = check(clone, *args, "--pusher", "mallory")
    assert code == 1 and [d["rule"] for d in json.loads(out)] == ["not-owner"]


def test_check_refuses_a_rewrite(clone: Clone) -> None:
    clone.git("reset", "--quiet", "--hard", "HEAD~1")
    clone.commit("Diverge")
    code, out = check(clone, "--base", "origin/main", "--head", "HEAD", "--json")
    assert code == 1 and [d["rule"] for d in json.loads(out)] == ["force-push"]


def test_check_usage_and_not_a_catalog(tmp_path: Path, clone: Clone) -> None:
    code, out = check(clone, "--base", "HEAD")
    assert code == 1 and "give --base and --head" in out
    plain = tmp_path / "plain"
    git(tmp_path, "init", "--quiet", str(plain))
    git(plain, "commit", "--quiet", "--allow-empty", "-m", "x")
    result = runner.invoke(app, ["check", "--repo", str(plain), "--base", "HEAD",
                                 "--head", "HEAD"])
    assert result.exit_code == 1 and "[not-a-catalog]" in result.output


def test_a_pull_request_merge_of_a_signed_lock_passes(clone: Clone) -> None:
    """GitHub checks the PR's merge commit: its lock changes come from CI's signed commit,
    so the (unsigned) merge itself does not need a signature."""
    base = clone.git("rev-parse", "HEAD").stdout.strip()
    clone.git("checkout", "--quiet", "-b", "pr")
    clone.add_lock("team/app:v2")
    clone.ci_commit()
    clone.git("checkout", "--quiet", "main")
    clone.write("README.md", "# catalog\n")
    clone.commit("Meanwhile on main")
    clone.git("merge", "--quiet", "--no-ff", "--no-edit", "pr")
    code, out = check(clone, "--base", base, "--head", "HEAD")
    assert code == 0, out
    # A lock written by the merge itself (not taken from a parent) must be signed.
    clone.write("locks/team/app/v2.conda-lock.yml",
                clone.read("locks/team/app/v2.conda-lock.yml") + "# by hand\n")
    clone.git("add", "-A")
    clone.git("commit", "--quiet", "--amend", "--no-edit")
    code, out = check(clone, "--base", base, "--head", "HEAD", "--json")
    assert "unsigned-lock" in [d["rule"] for d in json.loads(out)]


def test_check_with_a_catalog_in_a_subfolder(tmp_path: Path, clone: Clone) -> None:
    repo = tmp_path / "mono"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    (repo / "src").mkdir()
    (repo / "src" / "tool.py").write_text("print()\n")
    for rel, text in clone.files().items():
        (repo / "catalog" / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / "catalog" / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "mono")
    text = (repo / "catalog" / ENV).read_text().replace("python=3.11", "python=3.10")
    (repo / "catalog" / ENV).write_text(text)
    (repo / "src" / "tool.py").write_text("print(1)\n")  # outside the catalog: not policed
    git(repo, "commit", "--quiet", "-am", "edit v1")
    result = runner.invoke(app, ["--catalog", "catalog", "check", "--repo", str(repo),
                                 "--base", "HEAD~1", "--head", "HEAD", "--json"])
    assert [d["rule"] for d in json.loads(result.output)] == ["frozen-tag"], result.output


def test_check_history_audits_the_protected_branch(server: Server, clone: Clone) -> None:
    result = runner.invoke(app, ["check", "--history", "--repo", str(server.path)])
    assert result.exit_code == 0, result.output
    # A server without the hook let a bad commit in; the audit finds it afterwards.
    (server.path / "hooks" / "pre-receive").unlink()
    clone.edit_tags(v1={"dependencies": ["numpy"]})
    sha = clone.commit("Edit v1")
    clone.add_lock("team/app:v2")
    clone.commit("Unsigned lock", committer=CI)
    assert clone.push().accepted
    result = runner.invoke(app, ["check", "--history", "--branch", "main", "--repo",
                                 str(server.path), "--json"])
    assert result.exit_code == 1
    found = json.loads(result.output)
    assert (found[0]["rule"], found[0]["commit"]) == ("frozen-tag", sha)
    assert [d["rule"] for d in found] == ["frozen-tag", "unsigned-lock"]


# -- hook install / hook-impl -------------------------------------------------------------------


def test_hook_install(tmp_path: Path) -> None:
    bare = tmp_path / "srv.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    result = runner.invoke(app, ["hook", "install", str(bare)])
    assert result.exit_code == 0, result.output
    hook = bare / "hooks" / "pre-receive"
    text = hook.read_text()
    assert MARKER in text and f"exec {sys.executable} -m envctl.hook" in text
    assert hook.stat().st_mode & 0o111
    assert runner.invoke(app, ["hook", "install", str(bare)]).exit_code == 0  # update in place
    hook.write_text("#!/bin/sh\nexit 0\n")
    result = runner.invoke(app, ["hook", "install", str(bare)])
    assert result.exit_code == 1 and "[hook-exists]" in result.output
    assert runner.invoke(app, ["hook", "install", str(bare), "--force"]).exit_code == 0
    result = runner.invoke(app, ["hook", "install", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "[not-a-repo]" in result.output


def test_hook_impl_is_the_same_hook(server: Server) -> None:
    head = server.head()
    line = f"{head} {'0' * 40} refs/heads/main\n"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "envctl"), "hook-impl"], input=line, text=True,
        capture_output=True, cwd=server.path,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("envctl: refused refs/heads/main: deleting the protected")
    assert "hook-impl" not in runner.invoke(app, ["--help"]).output


# -- codeowners ---------------------------------------------------------------------------------


def test_codeowners(clone: Clone) -> None:
    config = clone.read("catalog.yaml") + "admins: [platform]\n"
    clone.write("catalog.yaml", config)
    clone.write("envs/ml/ranker.yaml", env_yaml({"v1": {"dependencies": ["a"]}},
                                                owners=["@org/ml-team", "bob"]))
    clone.write("envs/ml/orphan.yaml", env_yaml({"v1": {"dependencies": ["a"]}}))
    args = ["--catalog", str(clone.path), "codeowners"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    path = clone.path / ".github" / "CODEOWNERS"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert lines == [
        "/catalog.yaml @platform",
        "/envs/ml/orphan.yaml @platform",
        "/locks/ml/orphan/ @platform",
        "/envs/ml/ranker.yaml @org/ml-team @bob @platform",
        "/locks/ml/ranker/ @org/ml-team @bob @platform",
        "/envs/team/app.yaml @alice @platform",
        "/locks/team/app/ @alice @platform",
    ]
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0
    clone.edit_tags("envs/ml/ranker.yaml")  # unchanged owners: still up to date
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0
    clone.write(ENV, clone.read(ENV).replace("- alice", "- carol"))
    result = runner.invoke(app, [*args, "--check"])
    assert result.exit_code == 1 and "out of date" in result.output
    out = clone.path / "CODEOWNERS"
    assert runner.invoke(app, [*args, "--output", str(out)]).exit_code == 0
    assert "/envs/team/app.yaml @carol @platform" in out.read_text()


@pytest.mark.parametrize("owner", ["ranking", "@ranking", "dev@example.org"])
def test_owner_handles(owner: str) -> None:
    from envctl.codeowners import handle

    assert handle(owner) == ("@ranking" if "ranking" in owner else owner)
