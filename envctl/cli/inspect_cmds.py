"""``envctl lint``, ``envctl list`` and ``envctl show``: read-only views of a catalog.

The commands only render; the data comes from ``envctl.lint`` and ``envctl.describe``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from envctl.cli import common

if TYPE_CHECKING:
    from rich.console import Console

    from envctl.describe import AliasRef, EnvSummary, EnvView, PlatformView, TagSummary

LINT_HELP = """\
Check the whole catalog and list every problem, not just the first.

Checks catalog.yaml, every file under envs/ (names, safe YAML, schema, tags,
pointers, extends, channels, requirements, target platforms, near-duplicate
names) and every file under locks/ (orphans, incomplete locks, metas). Each
problem is printed as [bold]file:line: message \\[rule] — fix[/bold]; the exit
code is 1 if there is any.

[bold]Examples[/bold]

  envctl lint
  envctl lint --json | jq '.findings[] | .rule'
  envctl lint --rev origin/main       # a revision, without checking it out
  envctl --catalog ./my-catalog lint
"""

LIST_HELP = """\
List environments and their tags (mutable tags marked *, pointers as stable→v2).

PATTERN is a shell-style pattern on the name; quote it so the shell leaves it alone.
Reads only environment files, so it stays fast on a large catalog.

[bold]Examples[/bold]

  envctl list
  envctl list 'ranking/*'
  envctl list --json | jq '.[].name'
"""

SHOW_HELP = """\
Show what an environment name, tag or resolved id means.

NAME is team/env:tag, team/env (that is :latest, or the newest frozen tag when
'latest' is not declared), or a resolved id req_id:full_id. Pointers are
followed. Shows aliases, type, state, platforms, requested packages, sources,
the base it extends, the id per platform (provisional until CI locks the tag)
and, once locked, the packages installed.

[bold]Examples[/bold]

  envctl show ranking/base:v2
  envctl show ranking/base:stable --platform linux-64
  envctl show ranking/base --json
  envctl show 0a1b...:9f8e...      # a req_id:full_id from a run's logs
  envctl show --pathspec TrainFlow/456/train   # the environment a run's step used
"""

JsonOpt = common.JsonOpt


def register(app: typer.Typer) -> None:
    app.command("lint", help=LINT_HELP)(lint_command)
    app.command("list", help=LIST_HELP)(list_command)
    app.command("show", help=SHOW_HELP)(show_command)


# -- lint -------------------------------------------------------------------------------


def lint_command(
    ctx: typer.Context,
    *,
    rev: Annotated[
        str | None,
        typer.Option("--rev", help="Lint the catalog as it is at this git revision."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    from rich.markup import escape

    from envctl.lint import format_finding, lint_catalog

    report = lint_catalog(common.open_catalog(ctx, rev=rev))
    if as_json:
        common.print_json(report.to_dict())
    else:
        out = common.console()
        for finding in report.findings:
            out.print(escape(format_finding(finding)))
        style = "green" if report.ok else "red"
        out.print(f"[{style}]{escape(report.summary())}[/{style}]")
    if not report.ok:
        raise typer.Exit(1)


# -- list -------------------------------------------------------------------------------


def list_command(
    ctx: typer.Context,
    pattern: Annotated[
        str | None, typer.Argument(help="Shell-style pattern on the name, e.g. 'ranking/*'.")
    ] = None,
    *,
    as_json: JsonOpt = False,
) -> None:
    from envctl.describe import list_environments

    envs = list_environments(common.open_catalog(ctx), pattern)
    if as_json:
        common.print_json([e.to_dict() for e in envs])
        return
    out = common.console()
    if not envs:
        out.print("no environments" + (f" match {pattern!r}" if pattern else ""))
        return
    # Piped or NO_COLOR: colour says nothing, so a column says each tag's state in words.
    out.print(_list_table(envs, color=out.color_system is not None and not out.no_color))


_STATE_STYLE = {
    "frozen": "green", "pending": "yellow", "retired": "dim", "rolling": "cyan",
    "invalid": "red",
}


def _tag_cell(tag: TagSummary) -> str:
    from rich.markup import escape

    text = tag.tag + ("*" if tag.mutable else "")
    if tag.points_to:
        text += f"→{tag.points_to}"
    style = _STATE_STYLE.get(tag.state, "")
    return f"[{style}]{escape(text)}[/{style}]" if style else escape(text)


def _states_cell(tags: list[TagSummary]) -> str:
    """``frozen v1 v3 · pending v4 · rolling nightly``: each state once, its tags in file
    order. A pointer takes its target's state, so it is left out unless that is invalid."""
    from rich.markup import escape

    by_state: dict[str, list[str]] = {}
    for tag in tags:
        if tag.points_to is None or tag.state == "invalid":
            by_state.setdefault(tag.state, []).append(tag.tag)
    return escape(" · ".join(f"{state} {' '.join(names)}" for state, names in by_state.items()))


def _list_table(envs: list[EnvSummary], *, color: bool = True) -> object:
    from rich.markup import escape
    from rich.table import Table

    if color:
        caption = "* mutable · green frozen · yellow pending · cyan rolling · dim retired"
        columns = ("name", "tags", "description", "owners")
    else:
        caption = "* mutable · a→b: pointer a points to b"
        columns = ("name", "tags", "state", "description", "owners")
    table = Table(caption=caption)
    for column in columns:
        # A name is one word: folded only when nothing else can give way.
        table.add_column(column, overflow="fold", no_wrap=column == "name")
    for env in envs:
        if env.error:
            cells = [escape(env.name), "[red]invalid[/red]", escape(env.error), ""]
            table.add_row(*(cells if color else [*cells[:2], "invalid", *cells[2:]]))
            continue
        cells = [escape(env.name), " ".join(_tag_cell(t) for t in env.tags),
                 escape(env.description), escape(", ".join(env.owners))]
        if not color:
            cells.insert(2, _states_cell(env.tags))
        table.add_row(*cells)
    return table


# -- show -------------------------------------------------------------------------------


def show_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="NAME[:TAG] or REQ_ID:FULL_ID.", show_default=False)
    ] = None,
    *,
    pathspec: Annotated[
        str | None,
        typer.Option("--pathspec", metavar="FLOW/RUN/STEP", show_default=False,
                     help="The environment a run's step used (envctl's run registry)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", metavar="URL", show_default=False,
                     help="Store whose run records --pathspec may read (default: "
                     "$ENVCTL_STORE, catalog.yaml)."),
    ] = None,
    platform: Annotated[
        str | None, typer.Option("--platform", "-p", help="Only this platform.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    from envctl.errors import EnvctlError

    if (name is None) == (pathspec is None):
        raise EnvctlError("give exactly one of NAME and --pathspec", rule="invalid-arguments",
                          fix="envctl show team/env:v1, or envctl show --pathspec Flow/12/step")
    catalog = common.open_catalog(ctx)
    if pathspec is not None:
        from envctl import api  # the run registry and the store: only for a pathspec

        view = api.show(None, pathspec=pathspec, catalog=catalog, store=store,
                        platform=platform)
    else:
        # What api.show does for a name in an opened catalog, without importing the API
        # (lookup, activation) that a name does not need.
        from envctl.describe import show_environment

        assert name is not None
        view = show_environment(catalog, name, platform=platform)
    if as_json:
        data = view.to_dict()
        if pathspec is not None:
            data = {"pathspec": pathspec, "id": view.asked, **data}
        common.print_json(data)
        return
    out = common.console()
    if pathspec is not None:
        out.print(f"{pathspec} ran in {view.asked}", markup=False)
    _render_view(out, view)


def _render_view(out: Console, view: EnvView) -> None:
    from rich.markup import escape
    from rich.table import Table

    title = escape(view.alias)
    if view.asked != view.alias:
        title = f"{escape(view.asked)} → {title}"
    out.print(f"[bold]{title}[/bold]")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")

    def row(label: str, value: str | None) -> None:
        if value:
            grid.add_row(label, escape(value))

    row("Environment", f"of type {view.type}, {view.state}"
        + (", mutable" if view.mutable else ""))
    row("Description", view.tag_description or view.description)
    row("Owners", ", ".join(view.owners))
    row("Aliases", ", ".join(_alias_text(a) for a in view.aliases))
    row("Platforms", ", ".join(view.platforms))
    row("Base", view.base)
    row("Resolved on", view.resolved_at)
    row("Resolved by", view.resolved_by)
    row("Exclude newer", view.exclude_newer and (
        view.exclude_newer if view.pypi_exclude_newer
        else f"{view.exclude_newer} (conda only: the PyPI part was solved without it)"))
    row("User sources", ", ".join(view.sources))
    common_reqs = view.requested
    row("User-requested packages", _requested(common_reqs["conda"], common_reqs["pypi"]))
    for env in view.environments:
        extra_conda = [d for d in env.conda if d not in common_reqs["conda"]]
        extra_pypi = [r for r in env.pypi if r not in common_reqs["pypi"]]
        if extra_conda or extra_pypi:
            row(f"  on {env.platform} also", _requested(extra_conda, extra_pypi))
    out.print(grid)
    for env in view.environments:
        _render_platform(out, env)


def _alias_text(alias: AliasRef) -> str:
    marks = (["mutable"] if alias.mutable else []) + (["implicit"] if alias.implicit else [])
    return alias.alias + (f" ({', '.join(marks)})" if marks else "")


def _requested(conda: list[str], pypi: list[str]) -> str:
    return ", ".join([f"conda::{d}" for d in conda] + [f"pypi::{r}" for r in pypi]) or "(none)"


def _render_platform(out: Console, env: PlatformView) -> None:
    from rich.markup import escape

    out.print()
    if env.id:
        out.print(f"[bold]{env.platform}[/bold]  full hash {env.id}")
    elif env.base_pending:
        out.print(f"[bold]{env.platform}[/bold]  [yellow]base pending[/yellow]: the id is "
                  "known once CI locks the base")
    else:
        out.print(f"[bold]{env.platform}[/bold]  req_id {env.req_id} [yellow](provisional until "
                  "CI locks it)[/yellow]")
    if env.installed is not None:
        for manager, label in (("conda", "Conda packages installed"),
                               ("pypi", "Pypi packages installed")):
            packages = env.installed.get(manager) or []
            if packages:
                out.print(f"  {label}: " + escape(", ".join(str(p) for p in packages)))
