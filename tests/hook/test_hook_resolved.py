"""The hook against what the real resolver writes: a lock and meta from ``envctl resolve``
(rattler, the local test channel), committed by CI with its signature, pass every content
check; the same bytes tampered with do not."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from envctl.hook import install_hook
from envctl.resolve.api import resolve_tag
from envctl.testing.pushes import CI, Clone, Keys, git

pytestmark = pytest.mark.slow

WHEN = "2024-06-01T00:00:00Z"


def test_a_real_resolve_passes_the_hook(catalog_repo: Path, keys: Keys, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_HOOK_DEADLINE", "60")
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(bare))
    install_hook(bare)
    clone = Clone(catalog_repo, keys)
    clone.git("remote", "add", "origin", str(bare))
    config = clone.read("catalog.yaml")
    clone.write("catalog.yaml", config + "allowed_signers:\n  - principal: " + CI
                + "\n    key: " + json.dumps(keys.ci.public) + "\n")
    clone.write("envs/team/real.yaml",
                "owners: [alice]\ntags:\n  v1:\n    dependencies: [python=3.11, tinynum]\n")
    os.environ["GIT_COMMITTER_DATE"] = WHEN  # the tag's exclude_newer comes from here
    try:
        clone.commit("Add team/real")
    finally:
        del os.environ["GIT_COMMITTER_DATE"]
    push = clone.push()
    assert push.accepted, push.stderr  # .gitkeep files and all

    resolve_tag(catalog_repo, "team/real:v1", resolved_at=datetime(2024, 6, 2, tzinfo=UTC),
                resolved_by="ci")
    lock = "locks/team/real/v1.conda-lock.yml"
    assert (catalog_repo / lock).is_file()
    clone.ci_commit("Lock team/real:v1")
    push = clone.push()
    assert push.accepted, push.stderr

    # Frozen now: the spec cannot change, and neither can the lock, even re-signed by CI.
    clone.edit_tags("envs/team/real.yaml", v1={"dependencies": ["python=3.12"]})
    clone.commit("Edit v1")
    assert "frozen-tag" in clone.push().rules
    clone.git("reset", "--quiet", "--hard", "origin/main")
    text = clone.read(lock)
    sha = next(line.split()[-1] for line in text.splitlines() if "sha256:" in line)
    clone.write(lock, text.replace(sha, "0" * 64))
    clone.ci_commit("Tamper")
    assert "frozen-lock" in clone.push().rules

    # A new lock whose bytes were edited after the resolve: its hashes no longer agree.
    clone.git("reset", "--quiet", "--hard", "origin/main")
    clone.edit_tags("envs/team/real.yaml", v2={"dependencies": ["python=3.11"]})
    clone.commit("Add v2")
    assert clone.push().accepted
    resolve_tag(catalog_repo, "team/real:v2", resolved_at=datetime(2024, 6, 3, tzinfo=UTC),
                resolved_by="ci")
    lock2 = "locks/team/real/v2.conda-lock.yml"
    text = clone.read(lock2)
    sha = next(line.split()[-1] for line in text.splitlines() if "sha256:" in line)
    clone.write(lock2, text.replace(sha, "1" * 64))
    clone.ci_commit("Lock v2, edited")
    assert set(clone.push().rules) == {"lock-hash-mismatch", "full-id-mismatch"}
