"""What may be committed on a tip: never over a frozen lock, never against a changed spec."""

from __future__ import annotations

from envctl.ci.commit import screen, still_pending
from envctl.ci.repo import CatalogRepo
from envctl.ci.results import TagOutcome
from envctl.testing.handlocks import lock_files
from envctl.testing.pushes import Clone

from .conftest import ci_commit, env


def outcome_for(clone: Clone, alias: str, spec_files: dict[str, str] | None = None,
                **kwargs) -> TagOutcome:
    """A resolved outcome for ``alias`` as the work tree's (or given) spec declares it."""
    files = lock_files(spec_files or clone.files(), alias, **kwargs)
    return TagOutcome(alias, "resolved", "wrote", files={k: v.encode() for k, v in files.items()})


def test_screen_keeps_a_matching_lock(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]}})
    ok = outcome_for(repo, "team/app:v1")
    kept, dropped = screen(CatalogRepo.open(repo.path).catalog("HEAD"), [ok])
    assert [o.alias for o in kept] == ["team/app:v1"] and dropped == []


def test_a_frozen_lock_is_never_overwritten(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]}})
    ours = outcome_for(repo, "team/app:v1", exclude_newer="2024-02-02T00:00:00Z")
    same = outcome_for(repo, "team/app:v1")
    ci_commit(repo, "team/app:v1")  # someone locked it first (exclude_newer 2024-01-01)
    kept, dropped = screen(CatalogRepo.open(repo.path).catalog("HEAD"), [ours, same])
    assert kept == []
    assert [(d.alias, d.reason, d.pending) for d in dropped] == [
        ("team/app:v1", "already locked with another lock; a frozen lock is never overwritten",
         False),
        ("team/app:v1", "already locked with the same lock", False),
    ]


def test_a_spec_changed_meanwhile_stays_pending(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                           "v2": {"extends": "v1", "dependencies": ["numpy"]}})
    base = outcome_for(repo, "team/app:v1")
    for rel, data in base.files.items():
        repo.write(rel, data)  # the extending tag's lock names this base's full_id
    ext = outcome_for(repo, "team/app:v2")
    for rel in base.files:
        repo.remove(rel)
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.12"]},
                           "v2": {"extends": "v1", "dependencies": ["numpy"]}})
    kept, dropped = screen(CatalogRepo.open(repo.path).catalog("HEAD"), [base, ext])
    # v1's spec changed: its lock is stale; v2 was resolved on that stale base, so it goes too.
    assert kept == []
    assert {d.alias: d.pending for d in dropped} == {"team/app:v1": True, "team/app:v2": True}
    assert "its spec changed while it was resolved" in dropped[0].reason


def test_still_pending(repo: Clone) -> None:
    env(repo, "team/app", {"v1": {"dependencies": ["python=3.11"]},
                           "v2": {"dependencies": ["python=3.12"]},
                           "nightly": {"dependencies": ["python=3.12"]},
                           "stable": {"points_to": "v1"}})
    ci_commit(repo, "team/app:v1", "team/app:nightly")
    catalog = CatalogRepo.open(repo.path).catalog("HEAD")
    names = ["team/app:v1", "team/app:v2", "team/app:nightly", "team/app:stable", "team/x:v1"]
    assert still_pending(catalog, names) == ["team/app:v2"]
    # A rolling tag whose new spec failed to resolve in this run stays named.
    assert still_pending(catalog, names, ["team/app:nightly"]) == [
        "team/app:v2", "team/app:nightly"]
