"""Store lifecycle and supply chain: ``verify``, ``gc``, ``retire``, ``sbom``, ``audit``.

Thin: each command parses options, calls :mod:`envctl.lifecycle` and renders the
result; errors go to the one handler in ``envctl.cli.main``. Times are taken here
(the core gets ``now`` passed in).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from envctl.cli import common
from envctl.cli.common import show_envctl_warnings as show_envctl_warnings  # its old home

if TYPE_CHECKING:
    from envctl.lifecycle.gc import GcReport
    from envctl.lifecycle.verify import VerifyReport

JsonOpt = Annotated[bool, typer.Option("--json", help=common.JSON_HELP)]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="URL",
                 help="Artifact store (default: $ENVCTL_STORE, then store: in catalog.yaml).",
                 show_default=False),
]
RevOpt = Annotated[
    str | None,
    typer.Option("--rev", metavar="REV",
                 help="Catalog revision to judge (default: the protected branch).",
                 show_default=False),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option("--platform", "-p", help="One platform of the tag.", show_default=False),
]

VERIFY_EPILOG = """\
[bold]Examples[/bold]

  envctl verify                              # every locked tag on the protected branch
  envctl verify ranking/base:v3 --json
  envctl verify --store s3://bucket/envctl --records
"""

GC_EPILOG = """\
[bold]Examples[/bold]

  envctl gc --dry-run                        # what would go, and how many bytes
  envctl gc --older-than 30 --keep-last 3    # override retention: from catalog.yaml
  envctl gc --json

Each run marks what is unreferenced and deletes what an earlier run marked at least
--grace hours ago and that is still unreferenced and older than that: schedule it.
"""

RETIRE_EPILOG = """\
[bold]Examples[/bold]

  envctl retire ranking/base:v1 --reason "CVE-2024-3651 in idna; use v3"
  envctl retire ranking/base:v1 --reason "superseded" --branch retire-base-v1
"""

SBOM_EPILOG = """\
[bold]Examples[/bold]

  envctl sbom ranking/base:v3 --format cyclonedx-json -o base-v3.cdx.json
  envctl sbom ranking/base:stable --platform osx-arm64 --format spdx-json
"""

AUDIT_EPILOG = """\
[bold]Examples[/bold]

  envctl audit ranking/base:v3 --db osv-pypi.zip
  envctl audit ranking/base:stable --db advisories.json --json --ignore GHSA-xxxx-xxxx-xxxx

Exit status 1 when a locked package is affected.
"""


def register(app: typer.Typer) -> None:
    app.command("verify", epilog=VERIFY_EPILOG)(verify_command)
    app.command("gc", epilog=GC_EPILOG)(gc_command)
    app.command("retire", epilog=RETIRE_EPILOG)(retire_command)
    app.command("sbom", epilog=SBOM_EPILOG)(sbom_command)
    app.command("audit", epilog=AUDIT_EPILOG)(audit_command)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def human_size(n: int) -> str:
    """``512 B``, ``1.5 KiB`` ... ``2.0 TiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


class _Bar:
    """A rich progress bar on stderr for a long loop; silent off a terminal or with --json."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and common.err_console().is_terminal
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                     console=common.err_console(), transient=True)
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int, key: str) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)


# -- verify -------------------------------------------------------------------------------


def verify_command(
    ctx: typer.Context,
    tags: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME:TAG]...", help="Tags to verify (default: every locked "
                       "tag).", show_default=False),
    ] = None,
    *,
    store: StoreOpt = None,
    rev: RevOpt = None,
    records: Annotated[
        bool, typer.Option("--records", help="Also check that no record in the store names a "
                           "missing object.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Objects checked at once.")
                    ] = 8,
    json_: JsonOpt = False,
) -> None:
    """Check the store holds every locked lock, record and package, with the right sha256.

    Reads the catalog on the protected branch (or --rev); checks objects in parallel,
    each once, re-hashing every byte. Exits 1 if anything is missing or corrupt.
    """
    from envctl.lifecycle.catalogs import open_lifecycle_store, open_protected
    from envctl.lifecycle.verify import verify_catalog

    at = open_protected(common.state(ctx).catalog, rev=rev)
    st = open_lifecycle_store(store, at)
    with _Bar("verifying", not json_) as bar:
        report = verify_catalog(at.catalog, st, names=tags or (), rev=at.rev, records=records,
                                progress=bar, workers=jobs)
    if json_:
        common.print_json(report.to_dict())
    else:
        _print_verify(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_verify(report: VerifyReport) -> None:
    out = common.console()
    for problem in report.problems:
        style = "red" if problem.severity == "error" else "yellow"
        tags = f" [dim]({', '.join(problem.tags)})[/dim]" if problem.tags else ""
        out.print(f"[{style}]{problem.problem}[/{style}] {_escape(problem.message)}{tags}")
    for tag, why in sorted(report.skipped.items()):
        out.print(f"[dim]skipped {_escape(tag)}: {_escape(why)}[/dim]")
    where = f" at {report.rev[:12]}" if report.rev else ""
    summary = (f"{len(report.tags)} tags{where}, {report.objects} objects "
               f"({human_size(report.bytes)} re-hashed) in {_escape(report.store)}")
    errors = sum(1 for p in report.problems if p.severity == "error")
    if report.ok:
        out.print(f"[green]ok[/green] {summary}")
    else:
        out.print(f"[red]{errors} problem{'s' if errors != 1 else ''}[/red] in {summary}")


# -- gc -------------------------------------------------------------------------------------


def gc_command(
    ctx: typer.Context,
    *,
    store: StoreOpt = None,
    rev: RevOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would go; change nothing.")
    ] = False,
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", metavar="DAYS", min=0,
                     help="Keep earlier positions of mutable tags current within DAYS "
                     "(retention.keep_days).", show_default=False),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option("--keep-last", metavar="N", min=0,
                     help="Keep each mutable tag's N last earlier positions "
                     "(retention.keep_last).", show_default=False),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option("--grace", metavar="HOURS", min=0,
                     help="Delete only what was marked at least HOURS ago "
                     "(retention.grace_hours).", show_default=False),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Delete store objects no kept lock references, after a grace period.

    Retention (catalog.yaml's retention:, or the options): immutable tags are kept until
    retired; a mutable tag's earlier positions for --keep-last N or --older-than DAYS.
    """
    from envctl.lifecycle.catalogs import open_lifecycle_store, open_protected
    from envctl.lifecycle.gc import collect
    from envctl.lifecycle.reachability import reachability

    at = open_protected(common.state(ctx).catalog, rev=rev, require_git=True)
    st = open_lifecycle_store(store, at)
    retention = at.catalog.config.retention
    overrides = {k: v for k, v in (("keep_days", older_than), ("keep_last", keep_last),
                                   ("grace_hours", grace)) if v is not None}
    retention = retention.model_copy(update=overrides)
    now = datetime.now(UTC)
    reach = reachability(at, now=now, retention=retention)
    with _Bar("deleting", not json_ and not dry_run) as bar:
        report = collect(st, reach, now=now, grace_hours=retention.grace_hours,
                         dry_run=dry_run, progress=bar)
    if json_:
        common.print_json(report.to_dict())
        return
    _print_gc(report)


def _listing(out: Any, items: list[Any], limit: int = 20) -> None:
    for item in items[:limit]:
        out.print(f"  {item.kind:<8} {_escape(item.key)}  [dim]{human_size(item.size)}[/dim]")
    if len(items) > limit:
        out.print(f"  [dim]... and {len(items) - limit} more (--json lists them all)[/dim]")


def _print_gc(report: GcReport) -> None:
    out = common.console()
    err = common.err_console()
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {_escape(warning)}")
    out.print(f"{_escape(report.store)} at {report.rev[:12]}: {report.objects} objects, "
              f"{human_size(report.bytes)}; {len(report.garbage)} unreferenced and out of "
              f"retention ({human_size(report.garbage_bytes)})")
    if report.dry_run:
        verb = "would delete"
        items = report.deletable
    else:
        verb = "deleted"
        items = report.deleted
    out.print(f"[bold]{verb} {len(items)} objects ({human_size(sum(i.size for i in items))})"
              "[/bold]")
    _listing(out, items)
    waiting = [g for g in report.garbage if g.key in report.waiting]
    if waiting:
        reasons = sorted({report.waiting[g.key] for g in waiting})
        out.print(f"{len(waiting)} more wait for the grace period "
                  f"({report.grace_hours:g} h): {_escape(reasons[0])}"
                  + (f" (+{len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""))
    if report.spared:
        out.print(f"{len(report.spared)} spared: named by a record that stays "
                  "(e.g. an upload in flight)")
    if report.mark_key:
        out.print(f"[dim]marked in {_escape(report.mark_key)}[/dim]")


# -- retire -------------------------------------------------------------------------------


def retire_command(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(metavar="NAME:TAG", help="A frozen tag.")],
    *,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (one line; shown to "
                                        "everyone who creates it).")],
    branch: Annotated[
        str | None,
        typer.Option("--branch", "-b", help="Create this branch and commit there, ready for "
                     "a pull request.", show_default=False),
    ] = None,
    commit: Annotated[
        bool, typer.Option("--commit", help="Commit the change on the current branch.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Mark a frozen tag retired (the one change a frozen tag allows).

    Reviewed like any other change; then create warns or refuses (retired_policy in
    catalog.yaml), and gc may collect its artifacts.
    """
    from envctl.lifecycle.retire import retire

    result = retire(common.state(ctx).catalog, alias, reason, branch=branch, commit=commit)
    if json_:
        common.print_json(result.to_dict())
        return
    out = common.console()
    if not result.changed:
        out.print(f"{_escape(result.alias)} is already retired: {_escape(result.reason)}")
    else:
        was = f" (was: {_escape(result.previous)})" if result.previous else ""
        out.print(f"retired [bold]{_escape(result.alias)}[/bold] in {_escape(result.file)}: "
                  f"{_escape(result.reason)}{was}")
    if result.commit:
        on = f" on branch {_escape(result.branch)}" if result.branch else ""
        out.print(f"committed {result.commit[:12]}{on}; next: push it and open a pull request")
    elif result.changed:
        out.print("next: commit it and open a pull request (or rerun with --branch NAME)")


# -- sbom -----------------------------------------------------------------------------------


def sbom_command(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(metavar="NAME:TAG", help="A locked tag or a pointer.")],
    *,
    format: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT",
                          help="cyclonedx-json (CycloneDX 1.6) or spdx-json (SPDX 2.3).")
    ],
    platform: PlatformOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE",
                                  help="Write here instead of stdout.", show_default=False)
    ] = None,
    store: StoreOpt = None,
    rev: RevOpt = None,
) -> None:
    """Write a software bill of materials (CycloneDX or SPDX) of a tag's lock.

    Purls, hashes and dependencies from the lock; licenses as the package files in the
    store declare them.
    """
    from envctl.lifecycle.sbom import FORMATS, make_sbom
    from envctl.lookup import open_store

    if format not in FORMATS:
        from envctl.errors import EnvctlError

        raise EnvctlError(f"unknown --format {format!r}", rule="invalid-option",
                          fix=f"use one of: {', '.join(FORMATS)}")
    catalog = common.open_catalog(ctx, rev=rev)
    st = open_store(store, catalog=catalog)
    if st is None:
        common.err_console().print("[yellow]warning:[/yellow] no artifact store configured: "
                                   "the SBOM has no licenses (--store URL adds them)")
    result = make_sbom(catalog, alias, format=format, platform=platform,  # type: ignore[arg-type]
                       store=st, created=datetime.now(UTC).replace(microsecond=0))
    if output is None:
        sys.stdout.write(result.text)
        sys.stdout.flush()
        return
    from envctl.fsutil import atomic_write

    atomic_write(output.expanduser().absolute(), result.text.encode("utf-8"))
    common.console().print(
        f"wrote {result.format} SBOM of {_escape(result.alias)} ({result.platform}, "
        f"{result.packages} packages, {result.licensed} with a license) to "
        f"{_escape(str(output))}")


# -- audit ----------------------------------------------------------------------------------


def audit_command(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(metavar="NAME:TAG", help="A locked tag or a pointer.")],
    *,
    db: Annotated[
        Path, typer.Option("--db", metavar="FILE",
                           help="OSV advisories: a JSON file, a folder, or an osv.dev zip.")
    ],
    platform: PlatformOpt = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", metavar="ID", help="An advisory id or alias to ignore; "
                     "repeat.", show_default=False),
    ] = None,
    rev: RevOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Report locked packages an offline OSV advisory database lists, with severity.

    Exits 1 when any package is affected.
    """
    from envctl.lifecycle.audit import audit

    report = audit(common.open_catalog(ctx, rev=rev), alias, db, platform=platform,
                   ignore=ignore or ())
    if json_:
        common.print_json(report.to_dict())
    else:
        out = common.console()
        styles = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
        for finding in report.findings:
            level = finding.severity.level
            score = f" {finding.severity.score:g}" if finding.severity.score is not None else ""
            fixed = f"; fixed in {', '.join(finding.fixed)}" if finding.fixed else ""
            style = styles.get(level, "dim")
            out.print(
                f"[{style}]{level.upper()}{score}[/{style}] {_escape(finding.name)} "
                f"{_escape(finding.version)} ({'PyPI' if finding.manager == 'pip' else 'conda'},"
                f" {', '.join(finding.platforms)}): {_escape(finding.advisory)} "
                f"{_escape(finding.summary)}{_escape(fixed)}")
        if report.ignored:
            out.print(f"[dim]ignored: {', '.join(report.ignored)}[/dim]")
        verdict = (f"[red]{len(report.findings)} affected[/red]" if report.affected
                   else "[green]no known vulnerabilities[/green]")
        out.print(f"{verdict} in {report.packages} packages of {_escape(report.alias)} "
                  f"({report.advisories} advisories)")
    if report.affected:
        raise typer.Exit(1)
