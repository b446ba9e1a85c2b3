"""``envctl pr-summary``: the PR comment, compared with reviewed snapshots.

The snapshots in ``snapshots/`` are the exact markdown with commit ids replaced by their
labels (commit ids depend on the machine: catalog.yaml holds the channel's path). Run
with ``ENVCTL_UPDATE_SNAPSHOTS=1`` to rewrite them after a deliberate change, and review
the diff.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.names import Alias, parse_alias
from envctl.report.changes import CatalogDiff, RequestedDiff, TagChange
from envctl.report.pr_summary import MARKER, PrSummary, pr_summary, render_pr_summary
from envctl.report.templating import code, md

from .conftest import DAVE, ReportRepo, commit

SNAPSHOTS = Path(__file__).parent / "snapshots"


def normalise(text: str, report_repo: ReportRepo) -> str:
    for label, sha in report_repo.commits.items():
        text = text.replace(sha, f"<{label}>").replace(sha[:12], f"<{label}>")
    assert not re.search(r"\b[0-9a-f]{12}\b", text), "an unknown commit id in the output"
    return text


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("ENVCTL_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}; run with ENVCTL_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.slow
def test_good_pr_snapshot(in_catalog: Path, report_repo: ReportRepo) -> None:
    code, out = invoke("pr-summary", "--base", "main", "--head", "pr-good")
    assert code == 0
    check_snapshot("pr_good.md", normalise(out, report_repo))


@pytest.mark.slow
def test_bad_pr_snapshot(in_catalog: Path, report_repo: ReportRepo) -> None:
    code, out = invoke("pr-summary", "--base", "main", "--head", "pr-bad")
    assert code == 0  # the summary reports problems; 'envctl check' is the gate
    check_snapshot("pr_bad.md", normalise(out, report_repo))


@pytest.mark.slow
def test_lock_commit_range_shows_package_diffs(report_repo: ReportRepo) -> None:
    """The CI commit that locked v1-v4: each tag 'locked', compared with its predecessor."""
    summary = pr_summary(report_repo.root, report_repo.commits["add"],
                         report_repo.commits["lock"], check=False)
    changes = {str(c.alias): c for c in summary.diff.changes}
    assert {a: (c.change, c.compared_with) for a, c in changes.items()} == {
        "team/app:v1": ("locked", None),
        "team/app:v2": ("locked", "team/app:v1"),
        "team/app:v3": ("locked", "team/app:v2"),
        "team/app:v4": ("locked", "team/app:v3"),
    }
    assert changes["team/app:v1"].note == "first lock"
    v4 = changes["team/app:v4"].packages
    assert v4 is not None and v4.summary_body == "conda 1 added (linux-64 only)"
    text = render_pr_summary(summary)
    assert "<details open>" in text  # small: sections open
    assert "| linux-64 | conda | `torchlet` | ⟳ rebuilt | 1.0 cpu\\_0 | 1.0 cuda\\_1 |" in text


@pytest.mark.slow
def test_output_append_and_json(in_catalog: Path, tmp_path: Path,
                                report_repo: ReportRepo) -> None:
    out_file = tmp_path / "summary.md"
    out_file.write_text("# Job summary\n")
    code, out = invoke("pr-summary", "--base", "main", "--head", "pr-good", "--output",
                       str(out_file), "--append", "--collapse")
    assert code == 0
    text = out_file.read_text()
    assert text.startswith("# Job summary\n" + MARKER + "\n")
    assert "<details>" in text and "<details open>" not in text
    code, out = invoke("pr-summary", "--base", "main", "--head", "pr-bad", "--json")
    data = json.loads(out)
    assert list(data) == ["base", "head", "ok", "violations", "diff"]
    assert data["ok"] is False
    assert [v["rule"] for v in data["violations"]] == ["frozen-tag"]
    assert data["head"] == report_repo.commits["pr-bad"]


def test_large_pr_is_collapsed() -> None:
    changes = [TagChange(Alias(parse_alias("team/app").name, f"v{i}"), "added", "immutable",
                         "pending", requested=RequestedDiff([f"conda::pkg{i}"], []),
                         note="pending: packages are known once CI locks it")
               for i in range(10)]
    summary = PrSummary("a" * 40, "b" * 40, CatalogDiff("base", "head", changes=changes), [])
    text = render_pr_summary(summary)
    assert text.count("<details>") == 10 and "<details open>" not in text
    assert "### envctl: 10 tag changes in 1 environment" in text
    assert render_pr_summary(summary, collapse=False).count("<details open>") == 10


def test_nothing_changed() -> None:
    text = render_pr_summary(PrSummary("a" * 40, "b" * 40, CatalogDiff("base", "head"), []))
    assert "### envctl: 0 tag changes in 0 environments" in text
    assert "No environment changes." in text


def test_markdown_escaping() -> None:
    assert md("a|b <script>x</script> *bold* [link](http://x)") == (
        "a\\|b \\<script\\>x\\</script\\> \\*bold\\* \\[link\\](http://x)")
    assert md("line\nbreak & more") == "line break &amp; more"
    assert code("a`b|c") == "``a`b\\|c``"
    assert code("`start") == "`` `start ``"


@pytest.mark.slow
def test_base_moved_on_after_the_pr_branched(report_repo: ReportRepo, tmp_path: Path) -> None:
    """Only the PR's own changes count: main's newer commits are not reversed into it."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(report_repo.root),
                    str(clone)], check=True)
    subprocess.run(["git", "branch", "--quiet", "pr-good", "origin/pr-good"], cwd=clone,
                   check=True)
    env = clone / "envs/team/app.yaml"
    env.write_text(env.read_text().replace("stable: {points_to: v3}", "stable: {points_to: v4}"))
    commit(clone, "Move stable to v4 on main", DAVE)
    summary = pr_summary(clone, "main", "pr-good")
    assert summary.base == report_repo.commits["stable-v3"]  # the merge base, not main
    assert summary.ok, [v.render() for v in summary.violations]
    moved = next(c for c in summary.diff.changes if c.alias.tag == "stable")
    assert (moved.old_target, moved.new_target) == ("v3", "v2")


@pytest.mark.slow
def test_work_tree_locks_from_a_dry_run(report_repo: ReportRepo, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The PR job resolves pending tags without committing: the summary shows their packages."""
    from envctl.resolve.api import resolve_tag

    from .conftest import CUTOFF, RESOLVED_AT

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--branch", "pr-good", str(report_repo.root),
                    str(clone)], check=True)
    resolve_tag(clone, "team/app:v5", resolved_at=RESOLVED_AT, resolved_by="ci@example.org",
                exclude_newer=CUTOFF)
    summary = pr_summary(clone, report_repo.commits["stable-v3"], "HEAD", work_tree=clone)
    assert summary.ok
    v5 = next(c for c in summary.diff.changes if str(c.alias) == "team/app:v5")
    assert v5.provisional and v5.compared_with == "team/app:v4"
    assert v5.packages is not None
    assert v5.packages.summary_body == "conda 1 added"  # tinyframe, on top of v4
    new = next(c for c in summary.diff.changes if str(c.alias) == "team/new:v1")
    assert not new.provisional and new.packages is None  # not resolved in this run
    monkeypatch.chdir(clone)
    code_, out = invoke("pr-summary", "--base", "origin/main", "--work-tree")
    assert code_ == 0
    assert ("| `team/app` | `v5` | added (immutable, provisional lock) | vs `team/app:v4`: "
            "conda 1 added |") in out
