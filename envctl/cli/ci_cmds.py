"""``envctl ci``: the resolve-upload-commit loop a CI system runs on the protected branch.

Thin: parse options, open the store, call :mod:`envctl.ci`, render progress (rich, on
stderr), the report (JSON or text) and the markdown job summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from envctl.cli import common
from envctl.cli.options import now

if TYPE_CHECKING:
    from envctl.ci.report import Report
    from envctl.ci.run import CiEvent, Hooks
    from envctl.store import Store
    from envctl.store.upload import UploadProgress

CI_HELP = """\
Resolve what changed on the protected branch, upload it, commit the hashes back.

[bold]Examples[/bold]

  envctl ci plan --json                      # the changed tags, as a job matrix
  envctl ci run --sign-key ~/.ssh/envctl-ci  # plan, resolve, upload, commit, publish
  envctl ci run --only team/env:v2 --no-commit --results out/1   # one shard of a fan-out
  envctl ci commit --results out/1 --results out/2               # the single commit back
  envctl ci refresh                          # re-resolve rolling tags (nightly)
"""

SinceOpt = Annotated[
    str | None,
    typer.Option("--since", metavar="REV",
                 help="Start the diff here instead of at the last commit CI signed.",
                 show_default=False),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="URL", envvar="ENVCTL_STORE",
                 help="Artifact store (default: store: in catalog.yaml).", show_default=False),
]
SignKeyOpt = Annotated[
    str | None,
    typer.Option("--sign-key", metavar="PATH", envvar="ENVCTL_CI_SIGNING_KEY",
                 help="SSH private key that signs the commit back (in allowed_signers).",
                 show_default=False),
]
RemoteOpt = Annotated[str, typer.Option("--remote", help="The git remote to push to.")]
AttemptsOpt = Annotated[
    int, typer.Option("--max-attempts", min=1, max=50,
                      help="How many times to retry a push that lost a race.")
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", metavar="PATH", help="Write the JSON report here.",
                 show_default=False),
]
SummaryOpt = Annotated[
    Path | None,
    typer.Option("--summary", metavar="PATH",
                 help="Append the markdown summary here (default: $GITHUB_STEP_SUMMARY).",
                 show_default=False),
]
NoCommitOpt = Annotated[
    bool, typer.Option("--no-commit", help="Resolve and upload only; write --results for "
                       "'envctl ci commit'.")
]
ResultsOpt = Annotated[
    Path | None,
    typer.Option("--results", metavar="DIR", help="Write this job's results here (fan-out).",
                 show_default=False),
]


EXAMPLES = {
    "plan": """\
[bold]Examples[/bold]

  envctl ci plan --json                    # the changed tags since CI's last commit
  envctl ci plan --max-jobs 4 --github-output   # a matrix for a fan-out workflow
""",
    "run": """\
[bold]Examples[/bold]

  envctl ci run --sign-key ~/.ssh/envctl-ci --store s3://bucket/envctl
  envctl ci run --only team/env:v2 --no-commit --results out/1   # one shard
  envctl ci run --since origin/main~5 --json
""",
    "commit": """\
[bold]Examples[/bold]

  envctl ci commit --results out/1 --results out/2 --sign-key ~/.ssh/envctl-ci
""",
    "refresh": """\
[bold]Examples[/bold]

  envctl ci refresh --sign-key ~/.ssh/envctl-ci   # nightly: re-resolve rolling tags
""",
}


def register(app: typer.Typer) -> None:
    ci = typer.Typer(help=CI_HELP, no_args_is_help=True, rich_markup_mode="rich")
    ci.command("plan", epilog=EXAMPLES["plan"])(plan_command)
    ci.command("run", epilog=EXAMPLES["run"])(run_command)
    ci.command("commit", epilog=EXAMPLES["commit"])(commit_command)
    ci.command("refresh", epilog=EXAMPLES["refresh"])(refresh_command)
    app.add_typer(ci, name="ci")


# -- shared -----------------------------------------------------------------------------


def _store(root: Path, url: str | None) -> Store:
    from envctl.catalog import Catalog, WorkTreeSource
    from envctl.errors import StoreError
    from envctl.store import open_store

    if url:
        return open_store(url, base_dir=root, where="--store")
    configured = Catalog(WorkTreeSource(root)).config.store
    if not configured:
        raise StoreError(
            "no artifact store: envctl ci uploads every package before it commits a hash",
            file="catalog.yaml", rule="store-config",
            fix="set store: in catalog.yaml, or pass --store URL / ENVCTL_STORE",
        )
    return open_store(configured, base_dir=root)


class _Progress:
    """Resolve rows (as ``envctl resolve`` shows them) and one upload bar per tag, on stderr.

    On a terminal: rich progress bars. Elsewhere (CI logs): one line per stage.
    """

    def __init__(self, enabled: bool) -> None:
        from envctl.cli.resolve_cmds import _Progress as ResolveProgress

        self.console = common.err_console()
        self.live = enabled and self.console.is_terminal
        self.quiet = not enabled
        self.resolve = ResolveProgress(self.live)
        self.bars: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        self.resolve.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.resolve.__exit__(*exc)

    def hooks(self) -> Hooks:
        from envctl.ci.run import Hooks

        return Hooks(on_event=self.event, on_resolve=self.resolve, on_upload=self.upload)

    def event(self, event: CiEvent) -> None:
        if self.quiet or (self.live and event.stage in ("resolve", "upload", "verify")):
            return
        from rich.markup import escape

        what = f" {escape(event.alias)}" if event.alias else ""
        detail = f": {escape(event.detail)}" if event.detail else ""
        self.console.print(f"[dim]ci[/dim] {event.stage}{what}{detail}")

    def upload(self, alias: str, item: UploadProgress) -> None:
        progress = self.resolve.progress
        if progress is None:
            if not self.quiet and item.done == item.total:
                self.console.print(f"[dim]ci[/dim] uploaded {alias}: {item.done} file(s), "
                                   f"{item.bytes_done} bytes checked")
            return
        from rich.markup import escape

        if alias not in self.bars:
            self.bars[alias] = progress.add_task(f"upload {escape(alias)}",
                                                 total=item.bytes_total)
        progress.update(self.bars[alias], completed=item.bytes_done,
                        description=f"upload {escape(alias)} {item.done}/{item.total}")


def _finish(report: Report, *, json_: bool, report_path: Path | None,
            summary: Path | None) -> None:
    data = report.to_dict()
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    target = summary or (Path(os.environ["GITHUB_STEP_SUMMARY"])
                         if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if target is not None:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(report.to_markdown())
    if json_:
        common.print_json(data)
    else:
        _print_report(report)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _print_report(report: Report) -> None:
    from rich.markup import escape

    out = common.console()
    dropped = {d.alias: d for d in report.dropped}
    for o in report.outcomes:
        style = {"resolved": "green", "failed": "red"}.get(o.status, "yellow")
        status = o.status
        if o.alias in dropped:
            status, style = ("pending" if dropped[o.alias].pending else "not committed"), "yellow"
        elif o.status == "resolved" and report.landed:
            status = "locked"
        out.print(f"[{style}]{status:<9}[/{style}] {escape(o.alias)}")
        for ids in o.platforms:
            out.print(f"          {ids.platform:<11} {ids.env_id}")
        if o.status == "resolved":
            out.print(f"          [dim]{o.uploaded} package(s) sent, {o.skipped} already in "
                      "the store[/dim]")
        if o.status == "failed" or o.alias in dropped:
            reason = dropped[o.alias].reason if o.alias in dropped else o.message
            out.print(f"          [red]{escape(reason)}[/red]")
    for p in report.published:
        if p.status != "unchanged":
            out.print(f"[dim]alias[/dim]     {escape(p.alias)}: {p.status} {escape(p.message)}")
    if report.landed and report.commit:
        races = f" after {report.races} lost race(s)" if report.races else ""
        out.print(f"[green]committed[/green] {report.commit}{races}")
    elif not report.errors:
        out.print("nothing to commit")
    for alias, why in sorted(report.pending.items()):
        out.print(f"[yellow]pending[/yellow]   {escape(alias)}: {escape(why)}")
    err = common.err_console()
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for error in report.errors:
        fix = f" — {error['fix']}" if error.get("fix") else ""
        err.print(f"[red]error:[/red] {escape(str(error.get('message')))} "
                  f"[{escape(str(error.get('rule')))}]{escape(fix)}")


# -- commands ---------------------------------------------------------------------------


def plan_command(
    ctx: typer.Context,
    *,
    since: SinceOpt = None,
    all_tags: Annotated[bool, typer.Option("--all", help="Every pending and rolling tag of "
                                           "the catalog, not only what changed.")] = False,
    max_jobs: Annotated[int, typer.Option("--max-jobs", min=1, max=256,
                                          help="Matrix size limit (tags are grouped).")] = 16,
    github_output: Annotated[bool, typer.Option(
        "--github-output", help="Also write matrix= and count= to $GITHUB_OUTPUT.")] = False,
    json_: common.JsonOpt = False,
) -> None:
    """Show the tags a CI run would resolve and publish (--json: a job matrix).

    Tags changed since the last commit CI signed, plus those a failed run left pending.
    """
    from rich.markup import escape

    from envctl.ci.plan import make_plan
    from envctl.ci.repo import CatalogRepo

    plan = make_plan(CatalogRepo.open(common.catalog_root(ctx)), since=since, all_tags=all_tags)
    matrix = plan.matrix(max_jobs)
    if github_output and not os.environ.get("GITHUB_OUTPUT"):
        from envctl.errors import EnvctlError

        raise EnvctlError("--github-output needs $GITHUB_OUTPUT (set by GitHub Actions)",
                          rule="invalid-option", fix="drop --github-output outside a workflow")
    if github_output:
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as handle:
            handle.write(f"matrix={json.dumps(matrix, separators=(',', ':'))}\n")
            handle.write(f"count={len(plan.resolve)}\n")
    if json_:
        common.print_json({"matrix": matrix, "count": len(plan.resolve), **plan.to_dict()})
        return
    out = common.console()
    since_text = {"ci-commit": "the last CI commit", "since": "--since", "none": "the start",
                  "all": "--all"}[plan.base_kind]
    base = f" {plan.base[:12]}" if plan.base else ""
    out.print(f"changes since {since_text}{base} up to {plan.head[:12]}")
    for tag in plan.tags:
        out.print(f"  {tag.action:<8} {escape(tag.alias)} [dim]({tag.kind}, {tag.reason})[/dim]")
    if not plan.tags:
        out.print("  nothing to do")
    for problem in plan.problems:
        common.err_console().print(f"[yellow]warning:[/yellow] {escape(problem)}")


def run_command(
    ctx: typer.Context,
    *,
    since: SinceOpt = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="NAME:TAG", help="Resolve only these tags (repeat); the rest of "
        "the plan is left pending.", show_default=False)] = None,
    all_tags: Annotated[bool, typer.Option("--all", help="Plan every pending and rolling tag "
                                           "of the catalog.")] = False,
    results: ResultsOpt = None,
    no_commit: NoCommitOpt = False,
    store: StoreOpt = None,
    sign_key: SignKeyOpt = None,
    remote: RemoteOpt = "origin",
    max_attempts: AttemptsOpt = 5,
    report: ReportOpt = None,
    summary: SummaryOpt = None,
    json_: common.JsonOpt = False,
) -> None:
    """Resolve what changed, upload it, commit the hashes back (signed), publish aliases.

    A tag that fails stays pending (exit status 1); the others are still locked.
    A push that loses a race is redone on the new tip, a bounded number of times.
    """
    # One value may hold several tags ("a:v1 b:v2"): a matrix entry passes its shard whole.
    tags = [t for value in only or [] for t in value.replace(",", " ").split()]
    _run(ctx, refresh=False, since=since, only=tags, all_tags=all_tags, results=results,
         no_commit=no_commit, store=store, sign_key=sign_key, remote=remote,
         max_attempts=max_attempts, report=report, summary=summary, json_=json_)


def refresh_command(
    ctx: typer.Context,
    *,
    results: ResultsOpt = None,
    no_commit: NoCommitOpt = False,
    store: StoreOpt = None,
    sign_key: SignKeyOpt = None,
    remote: RemoteOpt = "origin",
    max_attempts: AttemptsOpt = 5,
    report: ReportOpt = None,
    summary: SummaryOpt = None,
    json_: common.JsonOpt = False,
) -> None:
    """Re-resolve every rolling tag (nightly); commit a new lock only where it changed."""
    _run(ctx, refresh=True, since=None, only=[], all_tags=False, results=results,
         no_commit=no_commit, store=store, sign_key=sign_key, remote=remote,
         max_attempts=max_attempts, report=report, summary=summary, json_=json_)


def _run(ctx: typer.Context, *, refresh: bool, since: str | None, only: list[str],
         all_tags: bool, results: Path | None, no_commit: bool, store: str | None,
         sign_key: str | None, remote: str, max_attempts: int, report: Path | None,
         summary: Path | None, json_: bool) -> None:
    from envctl.ci.results import write_results
    from envctl.ci.run import RunOptions, run_ci

    root = common.catalog_root(ctx)
    opened = _store(root, store)
    options = RunOptions(since=since, only=only, all_tags=all_tags, commit=not no_commit,
                         remote=remote, max_attempts=max_attempts, refresh=refresh,
                         sign_key=sign_key)
    with _Progress(not json_) as progress:
        outcome, job = run_ci(root, opened, now=now(), options=options, hooks=progress.hooks())
    if results is not None and job is not None:
        write_results(results, job)
    _finish(outcome, json_=json_, report_path=report, summary=summary)


def commit_command(
    ctx: typer.Context,
    *,
    results: Annotated[list[Path], typer.Option(
        "--results", metavar="DIR", help="A results folder of 'envctl ci run --no-commit' "
        "(repeat).")],
    store: StoreOpt = None,
    sign_key: SignKeyOpt = None,
    remote: RemoteOpt = "origin",
    max_attempts: AttemptsOpt = 5,
    report: ReportOpt = None,
    summary: SummaryOpt = None,
    json_: common.JsonOpt = False,
) -> None:
    """Collect the results of fan-out jobs into one signed commit back, publish aliases."""
    from envctl.ci.run import commit_results

    root = common.catalog_root(ctx)
    outcome = commit_results(root, _store(root, store), results, now=now(), sign_key=sign_key,
                             remote=remote, max_attempts=max_attempts)
    _finish(outcome, json_=json_, report_path=report, summary=summary)
