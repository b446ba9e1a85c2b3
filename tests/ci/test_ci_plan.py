"""The plan: what changed since the last CI commit, what is still pending, what to publish.

Real git, no server and no solve: catalogs written by hand (``envctl.testing.handlocks``).
"""

from __future__ import annotations

import json

import pytest

from envctl.ci.plan import (
    Plan,
    PlannedTag,
    first_declared,
    last_ci_commit,
    make_plan,
    order_by_base,
    pending_in,
    trailers,
)
from envctl.ci.repo import CatalogRepo
from envctl.errors import GitError
from envctl.testing.pushes import Clone, git

from .conftest import ci_commit, env


def plan_of(clone: Clone, **kwargs) -> Plan:
    return make_plan(CatalogRepo.open(clone.path), **kwargs)


def test_trailers_are_read_from_the_last_paragraph() -> None:
    message = "subject\n\nEnvctl-Pending: in/body:v1\n\nEnvctl-CI: 1\nEnvctl-Pending: a/b:v1\n"
    assert trailers(message) == {"Envctl-CI": ["1"], "Envctl-Pending": ["a/b:v1"]}
    assert pending_in(message) == ["a/b:v1"]
    assert trailers("") == {}


def test_last_ci_commit_must_be_signed_by_a_signer_and_marked(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]}})
    ci = ci_commit(repo, "team/app:v1")
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                           "v2": {"dependencies": ["python=3.12"]}})
    # A signer's commit without the trailer (a release manager) is not a CI run, and a
    # marked commit nobody signed is not one either.
    ci_commit(repo, "team/app:v2", trailer=False, key="alice")
    repo.write("locks/team/app/v2.meta.yaml", "forged\n")
    repo.commit("Envctl-CI: 0.1.0")
    assert last_ci_commit(CatalogRepo.open(repo.path), "HEAD") == ci


def test_first_run_plans_every_pending_tag_and_skips_the_rest(repo: Clone) -> None:
    env(repo, "team/app", {
        "v1": {"dependencies": ["python=3.11"]},
        "old": {"dependencies": ["python=3.10"], "retired": "use v1"},
        "nightly": {"dependencies": ["python=3.12"]},
        "stable": {"points_to": "v1"},
    })
    env(repo, "team/ext", {"v1": {"dependencies": ["python=3.11"]},
                           "v2": {"extends": "v1", "dependencies": ["numpy"]}})
    repo.write("envs/team/broken.yaml", "tags:\n  v1: {dependencies: 5}\n")
    repo.commit("Broken")
    plan = plan_of(repo)
    assert (plan.base, plan.base_kind, plan.last_ci_commit) == (None, "none", None)
    assert plan.resolve == ["team/app:nightly", "team/app:v1", "team/ext:v1", "team/ext:v2"]
    assert plan.publish == ["team/app:stable"]
    by = {t.alias: t for t in plan.tags}
    assert by["team/app:nightly"].kind == "rolling" and by["team/ext:v2"].base == "team/ext:v1"
    assert [p.split(":")[0] for p in plan.problems] == ["envs/team/broken.yaml"]


def test_after_a_ci_commit_only_the_change_is_planned(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                           "nightly": {"dependencies": ["python=3.12"]}})
    env(repo, "team/other", {"v1": {"dependencies": ["python=3.11"]}})
    ci = ci_commit(repo, "team/app:v1", "team/app:nightly", "team/other:v1")
    assert plan_of(repo).resolve == []
    assert plan_of(repo).publish == ["team/app:nightly", "team/app:v1", "team/other:v1"]

    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                           "v2": {"dependencies": ["python=3.12"]},
                           "nightly": {"dependencies": ["python=3.12", "numpy"]},
                           "stable": {"points_to": "v1"}})
    plan = plan_of(repo)
    assert (plan.base, plan.base_kind) == (ci, "ci-commit")
    assert [(t.alias, t.action, t.reason) for t in plan.tags] == [
        ("team/app:nightly", "resolve", "changed"),
        ("team/app:v2", "resolve", "new"),
        ("team/app:stable", "publish", "pointer-moved"),
        ("team/app:v1", "publish", "locked"),
        ("team/other:v1", "publish", "locked"),
    ]
    # --since narrows the diff to what it names.
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    assert plan_of(repo, since=head).resolve == []


def test_pending_trailers_are_planned_while_still_pending(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                           "v2": {"dependencies": ["python=3.12"]}})
    env(repo, "team/gone", {"v1": {"dependencies": ["python=3.11"]}})
    ci_commit(repo, "team/app:v1", pending=("team/app:v2", "team/gone:v1", "team/app:v9"))
    repo.remove("envs/team/gone.yaml")
    repo.commit("Remove team/gone")
    plan = plan_of(repo)
    assert [(t.alias, t.reason) for t in plan.tags if t.action == "resolve"] == [
        ("team/app:v2", "pending")
    ]


def test_first_declared_names_the_author_who_added_each_tag(repo: Clone) -> None:
    first = env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]}}, author="Ann")
    second = env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                                    "v2": {"dependencies": ["python=3.12"]}}, author="Bo")
    found = first_declared(CatalogRepo.open(repo.path), "HEAD", "envs/team/app.yaml")
    assert {t: (a.commit, a.author) for t, a in found.items()} == {
        "v1": (first, "Ann <a@example.org>"), "v2": (second, "Bo <a@example.org>"),
    }


def test_matrix_groups_bases_with_their_tags_and_respects_max_jobs() -> None:
    tags = order_by_base([
        PlannedTag("t/c:v2", "resolve", "immutable", "new", base="t/c:v1"),
        PlannedTag("t/c:v1", "resolve", "immutable", "new"),
        PlannedTag("t/a:v1", "resolve", "immutable", "new"),
        PlannedTag("t/b:v1", "resolve", "immutable", "new"),
        PlannedTag("t/b:stable", "publish", "pointer", "pointer-moved"),
    ])
    assert [t.alias for t in tags] == ["t/a:v1", "t/b:v1", "t/c:v1", "t/c:v2", "t/b:stable"]
    plan = Plan("h" * 40, None, "none", None, tuple(tags))
    assert plan.matrix(2) == {"include": [
        {"shard": 1, "only": "t/a:v1 t/b:v1", "count": 2},
        {"shard": 2, "only": "t/c:v1 t/c:v2", "count": 2},
    ]}
    assert len(plan.matrix(16)["include"]) == 3
    assert Plan("h" * 40, None, "none", None, ()).matrix() == {"include": []}
    json.dumps(plan.to_dict())


def test_a_shallow_clone_is_refused(repo: Clone, tmp_path) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]}})
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "--quiet", "--depth", "1", repo.path.as_uri(), str(shallow))
    with pytest.raises(GitError) as excinfo:
        make_plan(CatalogRepo.open(shallow))
    assert excinfo.value.rule == "shallow-clone" and "fetch-depth: 0" in excinfo.value.fix
