"""The pull request comment: what a PR really changes in the catalog, and whether the
protected branch would accept it.

Made of the catalog diff between ``base`` and ``head`` (:mod:`envctl.report.changes`)
and the violations :func:`envctl.check.check_range` finds (the same rules as the hook).
Rendered from ``templates/pr_summary.md.j2``. A large PR (many changed tags or package
rows) gets every per-tag section collapsed in ``<details>``; a small one has them open.
The comment starts with a hidden marker so a workflow can find and update its comment.

JSON shape of :meth:`PrSummary.to_dict`::

    {"base": "<sha>", "head": "<sha>", "ok": true,
     "violations": [VIOLATION],        # envctl check --json's items
     "diff": CATALOG_DIFF}             # see envctl.report.changes
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.catalog import Catalog, GitSource, WorkTreeSource
from envctl.git import rev_parse
from envctl.report.changes import CatalogDiff, catalog_diff

if TYPE_CHECKING:
    from envctl.policy import Violation

__all__ = ["MARKER", "PrSummary", "pr_summary", "render_pr_summary"]

#: First line of every comment, so a workflow can find the one it wrote before.
MARKER = "<!-- envctl:pr-summary -->"
#: Above these, per-tag sections start collapsed.
COLLAPSE_TAGS = 6
COLLAPSE_ROWS = 40
#: Rows shown per package table; the rest are counted.
ROW_LIMIT = 100


@dataclass(frozen=True)
class PrSummary:
    base: str
    head: str
    diff: CatalogDiff
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "ok": self.ok,
            "violations": [v.to_dict() for v in self.violations],
            "diff": self.diff.to_dict(),
        }


def pr_summary(repo: Path, base: str, head: str, *, subdir: str = "", check: bool = True,
               work_tree: Path | None = None) -> PrSummary:
    """Compare the catalog in ``subdir`` of ``repo`` at ``base`` and ``head``.

    Like a pull request's own diff, the comparison starts at the merge base of the two:
    when the protected branch moved on after the PR branched off, its newer commits are
    not the PR's changes (and would look like a history rewrite to the check).

    ``work_tree``: read the new side from this checkout of ``head`` instead, so locks a
    dry-run ``envctl resolve --changed-since BASE`` just wrote give pending tags their
    package diffs; such changes are marked ``provisional``. The rules are still checked
    on the commits.
    """
    from envctl.check import check_range
    from envctl.git import run_git

    old_sha, new_sha = rev_parse(repo, base), rev_parse(repo, head)
    proc = run_git(repo, ["merge-base", old_sha, new_sha], check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        old_sha = proc.stdout.decode().strip()
    old = Catalog(GitSource(repo, old_sha, subdir=subdir))
    committed = Catalog(GitSource(repo, new_sha, subdir=subdir))
    new = committed if work_tree is None else Catalog(WorkTreeSource(work_tree))
    diff = catalog_diff(old, new, old_label=f"{base} ({old_sha[:12]})",
                        new_label=f"{head} ({new_sha[:12]})" if work_tree is None
                        else f"{head} ({new_sha[:12]}) with the work tree's locks")
    if work_tree is not None:
        diff.changes = [
            replace(c, provisional=True)
            if new.lock_bytes(c.alias) is not None
            and new.lock_bytes(c.alias) != committed.lock_bytes(c.alias) else c
            for c in diff.changes
        ]
    violations = check_range(repo, old_sha, new_sha, subdir=subdir) if check else []
    return PrSummary(old_sha, new_sha, diff, violations)


def render_pr_summary(summary: PrSummary, *, collapse: bool | None = None) -> str:
    """The comment's markdown. ``collapse``: force sections closed/open (default: by size)."""
    from envctl.report.render import change_label, package_rows
    from envctl.report.templating import render

    sections = []
    total_rows = 0
    for change in summary.diff.changes:
        rows, cut = package_rows(change.packages, limit=ROW_LIMIT) if change.packages else ([],
                                                                                          0)
        total_rows += len(rows) + cut
        if rows or change.requested or change.note:
            sections.append((change, rows, cut))
    if collapse is None:
        collapse = len(summary.diff.changes) > COLLAPSE_TAGS or total_rows > COLLAPSE_ROWS
    envs = sorted({str(c.alias.name) for c in summary.diff.changes})
    return render(
        "pr_summary.md.j2",
        marker=MARKER,
        summary=summary,
        diff=summary.diff,
        envs=envs,
        sections=sections,
        collapse=collapse,
        change_label=change_label,
    )
