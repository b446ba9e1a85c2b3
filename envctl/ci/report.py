"""What a CI run did, for machines (JSON, e.g. a PR comment bot) and people (markdown).

The markdown is written for ``$GITHUB_STEP_SUMMARY``: a table of every tag with its
ids, then failures with the rule and the fix, then what is still pending. The exit
status is non-zero when any tag failed, any alias could not be published, or the job
itself failed (store down, push refused): a pending tag is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envctl.ci.artifacts import Published
    from envctl.ci.commit import Dropped
    from envctl.ci.results import TagOutcome
    from envctl.errors import EnvctlError

REPORT_VERSION = "1"


@dataclass
class Report:
    command: str  # run, commit, refresh, plan
    store: str | None = None
    plan: dict[str, Any] | None = None
    outcomes: list[TagOutcome] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    published: list[Published] = field(default_factory=list)
    commit: str | None = None
    landed: bool = False
    attempts: int = 0
    races: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, exc: EnvctlError) -> None:
        self.errors.append(exc.to_dict())

    @property
    def failed(self) -> list[TagOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def locked(self) -> list[str]:
        """Tags this run's commit locked (empty unless it landed)."""
        if not self.landed:
            return []
        dropped = {d.alias for d in self.dropped}
        return [o.alias for o in self.outcomes if o.status == "resolved" and o.alias not in dropped]

    @property
    def exit_code(self) -> int:
        if self.errors or self.failed or any(p.status == "failed" for p in self.published):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "command": self.command,
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "store": self.store,
            "commit": self.commit,
            "landed": self.landed,
            "attempts": self.attempts,
            "races": self.races,
            "locked": self.locked,
            "tags": [o.to_dict() for o in self.outcomes],
            "failed": [
                {"alias": o.alias, **(o.error or {"message": o.message})} for o in self.failed
            ],
            "dropped": [
                {"alias": d.alias, "reason": d.reason, "pending": d.pending} for d in self.dropped
            ],
            "pending": dict(sorted(self.pending.items())),
            "published": [p.to_dict() for p in self.published],
            "errors": self.errors,
            "warnings": self.warnings,
            "plan": self.plan,
            "seconds": round(self.seconds, 3),
        }

    # -- markdown ---------------------------------------------------------------------

    def to_markdown(self) -> str:
        ok = self.exit_code == 0
        title = {"run": "resolve", "commit": "commit back", "refresh": "refresh"}.get(
            self.command, self.command
        )
        lines = [f"## envctl ci {title}: {'✅ done' if ok else '❌ failed'}", ""]
        if self.landed and self.commit:
            races = f" after {self.races} lost race(s)" if self.races else ""
            lines.append(f"Committed `{self.commit[:12]}`{races}; store `{self.store}`.")
        elif self.commit is None and not self.errors:
            lines.append("Nothing to commit.")
        lines.append("")
        if self.outcomes:
            lines += ["| tag | status | platform | id (req_id:full_id) | packages sent / present |",
                      "|---|---|---|---|---|"]
            dropped = {d.alias: d for d in self.dropped}
            for o in self.outcomes:
                status = o.status
                if o.alias in dropped:
                    status = "pending" if dropped[o.alias].pending else "not committed"
                elif o.status == "resolved":
                    status = "locked" if self.landed else "resolved"
                counts = f"{o.uploaded} / {o.skipped}" if o.status == "resolved" else ""
                rows = o.platforms or ()
                if not rows:
                    lines.append(f"| `{o.alias}` | {status} | | | {counts} |")
                for i, ids in enumerate(rows):
                    first = i == 0
                    lines.append(
                        f"| {f'`{o.alias}`' if first else ''} | {status if first else ''} "
                        f"| {ids.platform} | `{ids.env_id}` | {counts if first else ''} |"
                    )
            lines.append("")
        if self.failed or self.errors:
            lines += ["### Failures", ""]
            for o in self.failed:
                error = o.error or {}
                rule = f" `{error['rule']}`" if error.get("rule") else ""
                fix = f" — {error['fix']}" if error.get("fix") else ""
                lines.append(f"- `{o.alias}`{rule}: {_md(error.get('message') or o.message)}{fix}")
            for error in self.errors:
                fix = f" — {error['fix']}" if error.get("fix") else ""
                lines.append(f"- job `{error.get('rule')}`: {_md(str(error.get('message')))}{fix}")
            lines.append("")
        if self.dropped:
            lines += ["### Not committed", ""]
            lines += [f"- `{d.alias}`: {_md(d.reason)}" for d in self.dropped]
            lines.append("")
        if self.pending:
            lines += ["### Still pending (retried by the next run)", ""]
            lines += [f"- `{a}`: {_md(w)}" for a, w in sorted(self.pending.items())]
            lines.append("")
        bad = [p for p in self.published if p.status in ("failed", "pending")]
        done = [p for p in self.published if p.status == "published"]
        if done or bad:
            lines += ["### Aliases in the store", ""]
            lines += [f"- `{p.alias}`: {p.status} {_md(p.message)}" for p in [*done, *bad]]
            lines.append("")
        if self.warnings:
            lines += ["### Warnings", ""]
            lines += [f"- {_md(w)}" for w in self.warnings]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """One line, with table pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
