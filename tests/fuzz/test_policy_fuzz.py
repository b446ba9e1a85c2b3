"""Fuzz the rules over random snapshots: whatever the two trees and the commit's changed
paths hold (garbage YAML, binary files, odd paths, symlinks, submodules, missing halves of
locks), ``check_commit`` returns Violations and never raises; so do the path parsers, and
``lint`` over the same trees returns a report and never raises."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from envctl.catalog import Catalog, Entry
from envctl.config import CatalogConfig
from envctl.errors import EnvctlError
from envctl.lint import lint_catalog
from envctl.names import env_name_from_path
from envctl.policy import (
    ZERO_SHA,
    CommitInfo,
    FileChange,
    MemorySnapshot,
    PushContext,
    RefUpdate,
    SignatureCheck,
    Violation,
    check_commit,
    check_ref_update,
    lock_path_alias,
)
from envctl.testing.handlocks import config_yaml, env_yaml, lock_files

_name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
FUZZ = settings.get_profile(_name if _name in ("fuzz", "long") else "fuzz")

CONFIG = config_yaml(signers=[("ci@example.org", "ssh-ed25519 AAAAC3Nz ci")],
                     mutable_tags=["latest", "stable"], admins=["root"])
ENV = env_yaml({"v1": {"dependencies": ["python=3.11"]}, "v2": {"extends": "v1"},
                "stable": {"points_to": "v1"}}, owners=["alice"])
BASE = {"catalog.yaml": CONFIG, "envs/team/app.yaml": ENV}
BASE.update(lock_files(BASE, "team/app:v1"))

PATHS = [
    "catalog.yaml", "envs/team/app.yaml", "envs/team/App.yaml", "envs/team/app.YAML",
    "envs/team/app.yml", "envs/team_b/app.yaml", "envs/team-b/app.yaml", "envs/t\u0435am/x.yaml",
    "envs/.gitkeep", "envs/a/b/c.yaml", "envs/a.yaml/b.yaml", "envs/../x.yaml", "envs/x",
    "locks/team/app/v1.conda-lock.yml", "locks/team/app/v1.meta.yaml",
    "locks/team/app/v2.conda-lock.yml", "locks/team/app/v2.meta.yaml",
    "locks/team/app/stable.meta.yaml", "locks/team/app/V1.meta.yaml", "locks/x.meta.yaml",
    "locks/team/gone/v1.meta.yaml", "README.md", "docs/a.md", ".github/x.yml", "src/evil.py",
    "envs/" + "a" * 40 + "/x.yaml", "locks/" + "/".join(["a"] * 20) + "/v1.meta.yaml",
]
CONTENTS = [
    ENV, CONFIG, *BASE.values(),
    env_yaml({"v1": {"dependencies": ["python=3.12"]}}),
    env_yaml({"v1": {"points_to": "v2"}, "v2": {"points_to": "v1"}}),
    env_yaml({"v3": {"extends": "team/app:v1"}, "stable": {"points_to": "v3"}}),
    env_yaml({"latest": {"dependencies": ["numpy["]}}, owners=["bob"]),
    "tags: {}\n", "tags: [1, 2]\n", "a: &x 1\nb: *x\n", "{", "", "\x00\x01binary",
    "version: '2'\n", "tags:\n  v1:\n    dependencies: [a]\n  v1:\n    dependencies: [b]\n",
    "mutable_tags: ['*']\nversion: '1'\n",
]
content = st.one_of(st.sampled_from(CONTENTS), st.text(max_size=60),
                    st.binary(max_size=60))
tree = st.dictionaries(st.sampled_from(PATHS), content, max_size=6)
MODES = ["100644", "100644", "100755", "120000", "160000", "040000"]
SIGNATURES = [None, SignatureCheck("none"), SignatureCheck("bad", detail="x"),
              SignatureCheck("good", principal="ci@example.org", fingerprint="SHA256:x"),
              SignatureCheck("good", principal="mallory@example.org")]


def snapshot(files: dict[str, Any]) -> MemorySnapshot:
    return MemorySnapshot(files)


@FUZZ
@given(tree, tree, st.data())
def test_check_commit_only_returns_violations(before_extra: dict[str, Any],
                                             after_extra: dict[str, Any],
                                             data: st.DataObject) -> None:
    before = {**BASE, **before_extra}
    after = {**BASE, **after_extra}
    for gone in data.draw(st.lists(st.sampled_from(sorted(before)), max_size=3)):
        after.pop(gone, None)
    changes = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        status = "D" if path not in after else ("A" if path not in before else "M")
        mode = data.draw(st.sampled_from(MODES))
        size = data.draw(st.one_of(st.none(), st.integers(0, 10**9)))
        changes.append(FileChange(path, status, new_mode=mode, size=size,
                                  inherited=data.draw(st.booleans())))
    commit = CommitInfo("c" * 40, ("b" * 40,), data.draw(st.sampled_from(
        ["ci@example.org", "alice@example.org", ""])), tuple(changes),
        signature=data.draw(st.sampled_from(SIGNATURES)))
    config = CatalogConfig.model_validate({"mutable_tags": ["latest", "stable"],
                                           "admins": ["root"]})
    pusher = data.draw(st.sampled_from([None, "alice", "root", "mallory", ""]))
    found = check_commit(snapshot(before), snapshot(after), commit, PushContext(config, pusher))
    for violation in found:
        assert isinstance(violation, Violation)
        assert violation.render()


@FUZZ
@given(st.sampled_from(["refs/heads/main", "refs/heads/dev", "refs/tags/v1",
                        "refs/heads/m\u0430in", "HEAD", ""]),
       st.sampled_from([ZERO_SHA, "a" * 40]), st.sampled_from([ZERO_SHA, "b" * 40]),
       st.booleans(), st.sampled_from(["main", "dev", "m\u0430in"]))
def test_ref_updates(ref: str, old: str, new: str, ff: bool, branch: str) -> None:
    config = CatalogConfig(branch=branch)
    for violation in check_ref_update(RefUpdate(ref, old, new, ff), config):
        assert violation.rule in ("branch-deletion", "force-push")


@FUZZ
@given(st.one_of(st.sampled_from(PATHS), st.text(max_size=80),
                 st.builds(lambda s: "locks/" + s, st.text(max_size=60)),
                 st.builds(lambda s: "envs/" + s, st.text(max_size=60))))
def test_path_parsers(path: str) -> None:
    with contextlib.suppress(EnvctlError):
        env_name_from_path(path)
    try:
        alias, kind = lock_path_alias(path)
    except Violation:
        return
    assert kind in ("lock", "meta") and str(alias.lock_path).startswith("locks/")


class MemorySource:
    """A catalog tree in a dict, as lint reads sources."""

    label = "memory"

    def __init__(self, files: dict[str, Any], kinds: dict[str, str]) -> None:
        self.files = {p: d.encode() if isinstance(d, str) else d for p, d in files.items()}
        self.kinds = kinds

    def read(self, path: str) -> bytes | None:
        return self.files.get(path) if self.kinds.get(path, "file") == "file" else None

    def entries(self, prefix: str) -> list[Entry]:
        return [
            Entry(p, self.kinds.get(p, "file"), len(d))  # type: ignore[arg-type]
            for p, d in sorted(self.files.items()) if p.startswith(prefix.rstrip("/") + "/")
        ]


@FUZZ
@given(tree, st.dictionaries(st.sampled_from(PATHS),
                             st.sampled_from(["file", "symlink", "other"]), max_size=3))
def test_lint_reports_and_never_raises(extra: dict[str, Any], kinds: dict[str, str]) -> None:
    report = lint_catalog(Catalog(MemorySource({**BASE, **extra}, kinds)))
    for finding in report.findings:
        assert isinstance(finding, EnvctlError) and finding.render()
    assert report.to_dict()["problems"] == len(report.findings)
