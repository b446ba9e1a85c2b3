"""Each rule with a real bare server, the installed pre-receive hook and a real ``git push``."""

from __future__ import annotations

import pytest

from envctl.testing.handlocks import config_yaml, env_yaml, package
from envctl.testing.pushes import ALICE, CI, ENV, LOCK, META, Clone, Push, Server

MAIN = "refs/heads/main"


def refused(push: Push, rule: str) -> None:
    assert push.returncode != 0, push.stderr
    assert rule in push.rules, push.stderr


# -- the protected branch -----------------------------------------------------------------


def test_an_accepted_push_prints_nothing(server: Server, clone: Clone) -> None:
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    sha = clone.commit("Add v3")
    push = clone.push()
    assert push.returncode == 0 and "envctl" not in push.stderr, push.stderr
    assert server.head() == sha


def test_creating_the_protected_branch_in_an_empty_repo(server: Server) -> None:
    """The session's server was created that way; its main holds the seed."""
    assert server.head() == server.clone("again").git("rev-parse", "HEAD").stdout.strip()


def test_force_push_is_refused(server: Server, clone: Clone) -> None:
    before = server.head()
    clone.git("reset", "--quiet", "--hard", "HEAD~1")
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Rewrite")
    push = clone.push("--force", "HEAD:main")
    refused(push, "force-push")
    assert push.refusals[0].startswith(f"envctl: refused {MAIN}: this push rewrites the history")
    assert server.head() == before


def test_deleting_the_protected_branch_is_refused(server: Server, clone: Clone) -> None:
    refused(clone.push(":main"), "branch-deletion")


def test_other_branches_are_not_policed(server: Server, clone: Clone) -> None:
    clone.edit_tags(v1={"dependencies": ["anything"]})  # would break the frozen rule on main
    clone.commit("WIP")
    assert clone.push("HEAD:refs/heads/wip").accepted
    clone.git("reset", "--quiet", "--hard", "HEAD~2")
    assert clone.push("--force", "HEAD:refs/heads/wip").accepted
    assert clone.push(":refs/heads/wip").accepted


def test_a_new_protected_branch_is_judged_on_its_whole_history(server: Server,
                                                                 clone: Clone) -> None:
    """Commits smuggled in through an unpoliced branch are caught when main is created."""
    clone.edit_tags(v1={"dependencies": ["anything"]})
    clone.commit("Edit frozen v1")
    assert clone.push("HEAD:refs/heads/wip").accepted
    # A catalog whose protected branch is "release" does not exist yet on the server.
    clone.write("catalog.yaml", clone.read("catalog.yaml").replace("branch: main",
                                                                   "branch: release"))
    clone.commit("Protect release")
    push = clone.push("HEAD:refs/heads/release")
    refused(push, "frozen-tag")


# -- frozen tags --------------------------------------------------------------------------


def test_editing_a_frozen_tag_is_refused(server: Server, clone: Clone) -> None:
    clone.edit_tags(v1={"dependencies": ["python=3.11", "numpy"]})
    sha = clone.commit("Edit v1")
    push = clone.push()
    assert push.returncode == 1
    assert push.refusals == [
        f"envctl: refused {MAIN}: {ENV} [v1]: frozen tag team/app:v1 cannot change: its lock "
        f"({LOCK}) is committed (refused commit {sha[:12]}) [frozen-tag] — add tag v3 instead "
        "(only 'retired:' may change on a frozen tag)"
    ]


@pytest.mark.parametrize("how", ["delete", "rename"])
def test_deleting_or_renaming_a_frozen_tag_is_refused(server: Server, clone: Clone,
                                                      how: str) -> None:
    clone.edit_tags(v1=None, stable={"points_to": "v2"})
    if how == "rename":
        clone.edit_tags(**{"v1-final": {"dependencies": ["python=3.11"]}})
    clone.commit(how)
    push = clone.push()
    refused(push, "frozen-tag")
    assert "add tag v3 instead" in push.stderr


def test_retiring_a_frozen_tag_and_fixing_a_pending_one(server: Server, clone: Clone) -> None:
    clone.edit_tags(v1={"dependencies": ["python=3.11"], "retired": "use v2"},
                    v2={"dependencies": ["python=3.12", "numpy"]})
    clone.commit("Retire v1, fix v2")
    assert clone.push().accepted


@pytest.mark.parametrize("path", [LOCK, META])
def test_a_frozen_lock_is_byte_for_byte_frozen(server: Server, clone: Clone, path: str) -> None:
    clone.write(path, clone.read(path) + "# re-resolved\n")
    clone.ci_commit("Relock v1")  # even CI, correctly signed, cannot rewrite it
    refused(clone.push(), "frozen-lock")


def test_mutable_tags_cannot_unfreeze(server: Server, clone: Clone) -> None:
    config = clone.read("catalog.yaml")
    clone.write("catalog.yaml", config.replace("- nightly", "- nightly\n- v*"))
    clone.commit("Make v* mutable")
    refused(clone.push(), "immutable-stays-immutable")
    # In the same push, the edit is judged by the config before the push anyway.
    clone.edit_tags(v1={"dependencies": ["numpy"]})
    clone.commit("Edit v1")
    push = clone.push()
    assert set(push.rules) == {"immutable-stays-immutable", "frozen-tag"}


def test_every_commit_of_a_push_is_judged(server: Server, clone: Clone) -> None:
    original = clone.read(ENV)
    clone.edit_tags(v1={"dependencies": ["numpy"]})
    bad = clone.commit("Break v1")
    clone.write(ENV, original)
    clone.commit("Restore v1")
    push = clone.push()
    refused(push, "frozen-tag")
    assert bad[:12] in push.stderr


# -- locks and signatures ---------------------------------------------------------------------


def test_a_signed_lock_is_accepted(server: Server, clone: Clone) -> None:
    clone.add_lock("team/app:v2")
    clone.ci_commit()
    assert clone.push().accepted


def test_an_unsigned_lock_is_refused(server: Server, clone: Clone) -> None:
    clone.add_lock("team/app:v2")
    clone.commit("Lock by hand", committer=CI)
    refused(clone.push(), "unsigned-lock")


def test_an_unresolvable_requirement_is_refused(server: Server, clone: Clone) -> None:
    """lint refuses it, so must the server: CI could never resolve the tag."""
    before = server.head()
    clone.edit_tags(v3={"dependencies": ["python=3.12", "tinynum>=>5"]})
    sha = clone.commit("Add v3")
    push = clone.push()
    refused(push, "invalid-requirement")
    [line] = push.refusals
    assert line.startswith(f"envctl: refused {MAIN}: {ENV}:")
    assert "[v3]: invalid conda requirement 'tinynum>=>5'" in line
    assert f"(refused commit {sha[:12]})" in line
    assert server.head() == before
    clone.edit_tags(v3={"dependencies": ["python=3.12", "tinynum>=5"]})
    clone.commit("Fix v3")
    refused(clone.push(), "invalid-requirement")  # every commit of a push is judged
    clone.git("reset", "--quiet", "--hard", "HEAD~2")
    clone.edit_tags(v3={"dependencies": ["python=3.12", "tinynum>=5"]})
    clone.commit("Add v3")
    assert clone.push().accepted


def test_a_lock_signed_by_an_unknown_key_is_refused(server: Server, clone: Clone) -> None:
    clone.add_lock("team/app:v2")
    clone.commit("Lock", key=clone.keys.mallory, committer=CI)  # claims to be CI
    refused(clone.push(), "unknown-signer")


def test_a_forged_signer_principal_is_refused(server: Server, clone: Clone) -> None:
    """alice's key is allowed, but for alice: git says "Good signature for alice" and does not
    care that the commit claims to come from CI."""
    clone.add_lock("team/app:v2")
    clone.commit("Lock", key=clone.keys.alice, committer=CI)
    push = clone.push()
    refused(push, "forged-signer")
    assert f"signed with {ALICE}'s key but committed as {CI}" in push.stderr
    # Committed as herself, alice's signed lock is fine.
    clone.git("reset", "--quiet", "--soft", "HEAD~1")
    clone.commit("Lock", key=clone.keys.alice, committer=ALICE)
    assert clone.push().accepted


def test_a_signer_added_in_the_same_push_cannot_sign(server: Server, clone: Clone) -> None:
    mallory = "mallory@example.org"
    config = clone.read("catalog.yaml")
    clone.write("catalog.yaml", config_yaml(
        signers=[(CI, clone.keys.ci.public), (ALICE, clone.keys.alice.public),
                 (mallory, clone.keys.mallory.public)],
        mutable_tags=["latest", "stable", "nightly"],
    ))
    assert clone.read("catalog.yaml") != config
    clone.commit("Trust mallory")
    clone.add_lock("team/app:v2")
    clone.commit("Lock", key=clone.keys.mallory, committer=mallory)
    refused(clone.push(), "unknown-signer")
    # Pushed on its own first, the new signer counts from the next push.
    clone.git("reset", "--quiet", "--hard", "HEAD~1")
    assert clone.push().accepted
    clone.add_lock("team/app:v2")
    clone.commit("Lock", key=clone.keys.mallory, committer=mallory)
    assert clone.push().accepted


def test_a_lock_that_does_not_match_its_spec_is_refused(server: Server, clone: Clone) -> None:
    clone.add_lock("team/app:v2", req_ids={"linux-64": "f" * 40})
    clone.ci_commit()
    refused(clone.push(), "req-id-mismatch")


def test_packages_outside_the_channels_or_without_sha256(server: Server, clone: Clone) -> None:
    evil = package("python", "linux-64", url="https://evil.example.com/linux-64/py-1-0.conda")
    hashless = package("numpy", "linux-64", sha256=None)
    clone.add_lock("team/app:v2", packages=[evil, hashless])
    clone.ci_commit()
    push = clone.push()
    assert sorted(push.rules) == ["channel-not-allowed", "missing-sha256"], push.stderr


# -- pointers ---------------------------------------------------------------------------------


def test_moving_a_pointer_is_accepted(server: Server, clone: Clone) -> None:
    clone.edit_tags(stable={"points_to": "v2"})
    clone.commit("Move stable")
    assert clone.push().accepted


@pytest.mark.parametrize(
    ("target", "rule"),
    [("v9", "pointer-missing"), ("other/env:v1", "pointer-other-env"),
     ("latest", "pointer-to-mutable")],
)
def test_bad_pointers_are_refused(server: Server, clone: Clone, target: str, rule: str) -> None:
    clone.edit_tags(stable={"points_to": target}, latest={"points_to": "v1"})
    clone.commit("Point")
    refused(clone.push(), rule)


# -- names, paths, files ----------------------------------------------------------------------


def test_near_duplicate_names_are_refused(server: Server, clone: Clone) -> None:
    clone.write("envs/team/my-env.yaml", env_yaml({"v1": {"dependencies": ["a"]}}))
    clone.commit("my-env")
    assert clone.push().accepted
    clone.write("envs/team/my_env.yaml", env_yaml({"v1": {"dependencies": ["a"]}}))
    clone.edit_tags(**{"v2_0": {"dependencies": ["a"]}, "v2.0": {"dependencies": ["b"]}})
    clone.commit("lookalikes")
    push = clone.push()
    assert push.rules == ["name-collision"] * 3, push.stderr


@pytest.mark.parametrize(
    ("path", "rule"),
    [("setup.py", "path-not-allowed"), ("envs/Team/x.yaml", "invalid-name"),
     ("locks/team/app/notes.txt", "invalid-name")],
)
def test_paths_outside_the_catalog_layout(server: Server, clone: Clone, path: str,
                                          rule: str) -> None:
    clone.write(path, "x: y\n")
    clone.commit("stray file")
    refused(clone.push(), rule)


def test_docs_and_workflows_are_allowed(server: Server, clone: Clone) -> None:
    clone.write("README.md", "# catalog\n")
    clone.write("docs/howto.md", "text\n")
    clone.write(".github/workflows/envctl-check.yml", "on: pull_request\n")
    clone.commit("docs")
    assert clone.push().accepted


def test_symlinks_are_refused(server: Server, clone: Clone) -> None:
    (clone.path / "envs/team/link.yaml").symlink_to("app.yaml")
    clone.commit("link")
    refused(clone.push(), "symlink")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("tags:\n  v1: {dependencies: [a]}\n  v1: {dependencies: [b]}\n", "duplicate-key"),
        ("tags:\n  v1: &x {dependencies: [a]}\n  v2: *x\n", "yaml-alias"),
        ("tags: {v1: {dependencies: [a]}}\n" + "#" * 1_000_001 + "\n", "file-too-large"),
    ],
)
def test_unsafe_yaml_is_refused(server: Server, clone: Clone, text: str, rule: str) -> None:
    clone.write("envs/team/new.yaml", text)
    clone.commit("unsafe")
    refused(clone.push(), rule)


# -- owners -----------------------------------------------------------------------------------


def test_owners_where_the_server_names_the_pusher(server: Server, clone: Clone) -> None:
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    push = clone.push(env={"GL_USERNAME": "mallory"})
    refused(push, "not-owner")
    assert "mallory is not an owner of team/app (owners: alice)" in push.stderr
    assert clone.push(env={"GITHUB_USER_LOGIN": "alice"}).accepted


def test_no_identity_means_no_owner_check(server: Server, clone: Clone) -> None:
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    assert clone.push().accepted


# -- robustness -------------------------------------------------------------------------------


def test_the_hook_refuses_rather_than_hangs(server: Server, clone: Clone) -> None:
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    push = clone.push(env={"ENVCTL_HOOK_DEADLINE": "0.001"})
    assert push.returncode != 0
    assert push.refusals == [
        f"envctl: refused {MAIN}: the check did not finish within 0.001 s [deadline] — push "
        "fewer commits at a time; if it persists, tell the server's admin"
    ]


def test_push_options_are_accepted(server: Server, clone: Clone) -> None:
    server_git = ["-C", str(server.path), "config", "receive.advertisePushOptions", "true"]
    clone.git(*server_git)
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    assert clone.push("-o", "ci.skip", "HEAD:main").accepted
