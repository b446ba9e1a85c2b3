"""Turning diffs into rows a person reads: one row per package change, with the platforms
it happens on merged (an upgrade on both platforms is one row, not two). Shared by the
terminal table, the markdown output, the PR comment and the HTML site."""

from __future__ import annotations

from dataclasses import dataclass

from envctl.report.changes import CatalogDiff, TagChange
from envctl.report.diff import CHANGE_KINDS, EnvDiff

__all__ = ["ARROWS", "Row", "change_label", "markdown_catalog_diff", "markdown_env_diffs",
           "package_rows"]

#: A short mark per kind of change, for tables.
ARROWS = {"added": "+", "removed": "−", "upgraded": "↑", "downgraded": "↓", "rebuilt": "⟳",
          "changed": "~"}


@dataclass(frozen=True)
class Row:
    platforms: str  # "linux-64, osx-arm64", or "all" when it is every compared platform
    manager: str
    name: str
    change: str
    old: str
    new: str
    detail: str

    @property
    def mark(self) -> str:
        return ARROWS.get(self.change, "")


def package_rows(diff: EnvDiff, *, limit: int | None = None) -> tuple[list[Row], int]:
    """Rows sorted conda first, by kind of change, then name; and how many were cut."""
    compared = [p.platform for p in diff.platforms if p.status in ("same", "changed")]
    merged: dict[tuple[str, str, str, str, str, str], list[str]] = {}
    for p in diff.platforms:
        for c in p.changes:
            key = (c.manager, c.name, c.change, c.old or "", c.new or "", c.detail or "")
            merged.setdefault(key, []).append(p.platform)
    rows = []
    order = {k: i for i, k in enumerate(CHANGE_KINDS)}
    for (manager, name, change, old, new, detail), platforms in sorted(
        merged.items(), key=lambda kv: (kv[0][0], order[kv[0][2]], kv[0][1], kv[1])
    ):
        label = "all" if len(compared) > 1 and platforms == compared else ", ".join(platforms)
        rows.append(Row(label, manager, name, change, old, new, detail))
    if limit is not None and len(rows) > limit:
        return rows[:limit], len(rows) - limit
    return rows, 0


def change_label(change: TagChange) -> str:
    """``added (immutable, frozen)``, ``moved v1 → v2``, ``relocked (rolling)``..."""
    if change.change == "moved":
        return f"moved {change.old_target} → {change.new_target}"
    if change.kind == "pointer" and change.change == "added":
        return f"added → {change.new_target}"
    if change.kind == "pointer" and change.change == "removed":
        return f"removed (was → {change.old_target})"
    parts = [change.kind]
    if change.provisional:
        parts.append("provisional lock")  # resolved by this job, not committed
    elif change.state and change.state not in (change.kind, "rolling", "pointer"):
        parts.append(change.state)
    return f"{change.change} ({', '.join(parts)})"


def markdown_env_diffs(diffs: list[EnvDiff]) -> str:
    from envctl.report.templating import render

    return render("diff.md.j2", diffs=[(d, *package_rows(d)) for d in diffs])


def markdown_catalog_diff(diff: CatalogDiff) -> str:
    from envctl.report.templating import render

    return render("catalog_diff.md.j2", diff=diff, change_label=change_label,
                  rows_of=package_rows)
