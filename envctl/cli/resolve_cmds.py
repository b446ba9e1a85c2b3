"""``envctl resolve``: solve tags into conda-lock v1 lockfiles and ``.meta.yaml`` files.

The command picks the tags, shows progress per environment and platform, and
prints the ids; :mod:`envctl.resolve.api` does the work and never prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from envctl.cli import common
from envctl.cli.options import RESOLVED_BY_ENV

if TYPE_CHECKING:
    from envctl.resolve.api import ResolveEvent, TagResult

EPILOG = """\
[bold]Examples[/bold]

  envctl resolve ranking/base:v2              # one tag (its base first if unlocked)
  envctl resolve ranking/base:stable          # a pointer resolves the tag it points to
  envctl resolve --all                        # every tag; frozen ones are left alone
  envctl resolve --changed-since origin/main  # what a pull request adds or changes
  envctl resolve ranking/base:v2 --platform osx-arm64   # check one platform, write nothing
  envctl resolve ranking/base:v3 --exclude-newer now    # before committing the tag
  envctl resolve ranking/base:v2 --json
"""

#: Printed after a resolve that wrote locks: they are the user's to try, CI's to commit.
TRIAL_NOTE = (
    "note: these locks are for trying the tag here; CI writes the ones that are committed "
    "(leave locks/ out of your commit)"
)


class _Progress:
    """A rich progress display: one row per environment and platform, on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows: dict[tuple[str, str], Any] = {}
        self.progress: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=common.err_console(),
                transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: ResolveEvent) -> None:
        if self.progress is None:
            return
        from rich.markup import escape

        key = (event.alias, event.platform or "")
        label = (
            f"{escape(event.alias)} [dim]{event.platform}[/dim]"
            if event.platform
            else escape(event.alias)
        )
        if event.stage == "start" and event.platform:
            self.rows[key] = self.progress.add_task(f"{label}: starting", total=1)
        elif event.stage in ("conda", "pypi") and key in self.rows:
            what = "conda packages" if event.stage == "conda" else "PyPI packages"
            self.progress.update(self.rows[key], description=f"{label}: solving {what}")
        elif event.stage == "solved" and key in self.rows:
            self.progress.update(
                self.rows[key], description=f"{label}: [green]{event.detail}[/green]", completed=1
            )
        elif event.stage == "start":
            self.progress.console.print(f"{label}: {escape(event.detail)}")
        elif event.stage == "failed":
            for (alias, _), task in self.rows.items():
                if alias == event.alias and not self.progress.tasks[task].finished:
                    self.progress.update(task, description=f"{label}: [red]failed[/red]")
                    self.progress.stop_task(task)


def _print_results(results: list[TagResult]) -> None:
    from rich.markup import escape

    out = common.console()
    # Plain aligned lines, not a table: an id is 81 characters and must never be cut.
    rows = [
        (
            result.alias if index == 0 else "",
            p.platform,
            p.env_id,
            f"{p.conda} conda + {p.pypi} pypi",
        )
        for result in results
        for index, p in enumerate(result.platforms)
    ]
    if rows:
        width = max(len(r[0]) for r in rows)
        plat = max(len(r[1]) for r in rows)
        for alias, platform, env_id, counts in rows:
            name = escape(alias.ljust(width))
            out.print(f"{name}  {platform.ljust(plat)}  {env_id}  [dim]{counts}[/dim]")
    for result in results:
        style = {"resolved": "green", "frozen": "yellow", "unchanged": "yellow"}.get(
            result.status, "cyan"
        )
        out.print(f"[{style}]{result.status}[/{style}] {escape(result.message)}")


def resolve(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Environments as NAME[:TAG] (default tag: latest).", show_default=False
        ),
    ] = None,
    *,
    all_tags: Annotated[
        bool, typer.Option("--all", help="Every concrete tag of the catalog.")
    ] = False,
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            metavar="REV",
            help="Tags added or changed since this git revision (work tree included).",
        ),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform",
            help="Solve only this platform (repeat); writes nothing unless all are covered.",
            show_default=False,
        ),
    ] = None,
    exclude_newer: Annotated[
        str | None,
        typer.Option(
            "--exclude-newer",
            metavar="TIME",
            help="Override the cut-off for packages: an ISO time, 'now' or 'none' "
            "(default: when the tag was committed; none for rolling tags).",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help=f"Who resolves, recorded in meta (default: ${RESOLVED_BY_ENV}, git user).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Re-resolve a locked tag whose lock is not committed yet."),
    ] = False,
    json_: common.JsonOpt = False,
) -> None:
    """Resolve environments into conda-lock v1 lockfiles (conda + PyPI, every platform).

    Each tag gets locks/<env>/<tag>.conda-lock.yml and <tag>.meta.yaml with its
    req_id:full_id per platform. Frozen tags (immutable and locked) are left alone.
    """
    from envctl.catalog import Catalog, WorkTreeSource
    from envctl.cli.main import report_error
    from envctl.cli.options import now, parse_exclude_newer, resolved_by
    from envctl.errors import EnvctlError
    from envctl.resolve import api

    if not (names or all_tags or changed_since):
        raise EnvctlError(
            "nothing to resolve",
            rule="no-target",
            fix="name environments (team/env:v1), or pass --all or --changed-since REV",
        )
    root = common.catalog_root(ctx)
    cutoff = parse_exclude_newer(exclude_newer)
    catalog = Catalog(WorkTreeSource(root))
    aliases = api.select(catalog, root, names or [], all_tags=all_tags, changed_since=changed_since)
    who = by or resolved_by(root)
    show_progress = not json_ and common.err_console().is_terminal
    with _Progress(show_progress) as progress:
        results, errors = api.resolve(
            root,
            aliases,
            resolved_at=now(),
            resolved_by=who,
            exclude_newer=cutoff,
            platforms=platform,
            force=force,
            reporter=progress,
        )
    if json_:
        common.print_json(
            {
                "results": [r.to_dict() for r in results],
                "errors": [{"alias": alias, **exc.to_dict()} for alias, exc in errors],
            }
        )
    else:
        if not aliases:
            common.console().print("no tags to resolve")
        _print_results(results)
        if any(r.status == "resolved" for r in results):
            common.console().print(
                f"[dim]{TRIAL_NOTE}[/dim]", markup=True, highlight=False
            )
        for _, exc in errors:
            report_error(exc)
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("resolve", epilog=EPILOG)(resolve)
