"""``envctl diff``, ``history``, ``pr-summary``, ``search`` and ``site``: review and discovery.

The commands only render; the data comes from ``envctl.report``. Colours follow rich's
rules: none when stdout is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envctl.cli import common

if TYPE_CHECKING:
    from rich.console import Console

    from envctl.catalog import Catalog
    from envctl.report.changes import CatalogDiff
    from envctl.report.diff import EnvDiff
    from envctl.report.sides import CatalogOpener

DIFF_HELP = """\
Show what changes, package by package, between two environments or catalog
revisions.

Each side A and B is one of:

  [bold]NAME:TAG[/bold]        a tag's lock in the work tree (pointers are followed)
  [bold]REQ_ID:FULL_ID[/bold]  the one platform that resolved id names
  [bold]…@REV[/bold]           either of those at a git revision (no checkout)
  [bold]PATH[/bold]            a conda-lock file, also one another tool wrote

With only A (NAME:TAG), it is compared with the version it was bumped from:
its extends base, else the immutable tag declared before it. With no side,
--rev REV [--rev REV2] compares the whole catalog at REV with REV2 (default:
the work tree). Otherwise the first --rev applies to A and the second to B
(one --rev: A at REV, B in the work tree when only A is given, else both).

Packages are compared per platform, conda and PyPI separately: added,
removed, upgraded/downgraded (conda's or PEP 440 version order), rebuilt
(same version, another build) or changed (same version and build, another
file, e.g. another git commit).

[bold]Examples[/bold]

  envctl diff ranking/base:v1 ranking/base:v2
  envctl diff ranking/base:v2                 # vs the version before it
  envctl diff ranking/base:stable@main ranking/base:stable
  envctl diff ranking/base:stable --rev HEAD~5 --rev HEAD
  envctl diff --rev origin/main               # the catalog vs the work tree
  envctl diff --rev main --rev HEAD --format md
  envctl diff ranking/base:v2 other/conda-lock.yml --json
  envctl diff 0a1b…:9f8e… 5c6d…:7e8f… --exit-code   # 1 when they differ
"""

HISTORY_HELP = """\
Show every position a tag has held on the protected branch, oldest first.

A pointer: each target it pointed to, with the commit, author, date and message
that moved it. A rolling tag: each spec change and re-lock. An immutable tag:
when it was added, resolved (its lock committed) and retired. Read from git
history of the one env file and lock meta, so it stays fast on long histories.

[bold]Examples[/bold]

  envctl history ranking/base:stable
  envctl history ranking/base:v2 --json
  envctl history ranking/base:nightly --rev origin/main
"""

PR_SUMMARY_HELP = """\
Write the markdown comment for a pull request.

It lists tags added, pointers moved, package diffs of bumps (against the tag
bumped from, the extends base, or the previous lock), and the problems
'envctl check' finds. Large PRs get collapsed sections.

[bold]Examples[/bold]

  envctl pr-summary --base origin/main --head HEAD
  envctl pr-summary --base "$BASE_SHA" --head "$HEAD_SHA" --output comment.md
  envctl pr-summary --base origin/main --output "$GITHUB_STEP_SUMMARY" --append
  envctl resolve --changed-since origin/main && envctl pr-summary --base origin/main --work-tree
"""

SEARCH_HELP = """\
Find environments by name, description, owner, or by a package their locks contain.

TEXT matches (case-insensitively) part of a name, a description or an owner.
--package NAME[=VERSION[=BUILD]] keeps tags whose lock installs that package;
VERSION and BUILD take wildcards. A version range is a conda match spec:
'NAME>=1.2,<2', 'NAME >=1.2 BUILD'.

[bold]Examples[/bold]

  envctl search ranking
  envctl search --package openssl=3.0.7
  envctl search --package 'numpy=1.26.*' --json
  envctl search --package 'openssl>=3.0,<3.2'
  envctl search gpu --package torchlet
"""

SITE_HELP = """\
Write a static HTML catalog into OUTDIR.

An index with a filter box, and a page per environment: tags, current pointer
targets and their history, ids, create commands, packages per platform, diffs
between versions. Self-contained pages: open OUTDIR/index.html from disk or
publish the folder anywhere.

[bold]Examples[/bold]

  envctl site public/
  envctl site public/ --rev origin/main --title "ML environments"
"""

JsonOpt = Annotated[bool, typer.Option("--json", help=common.JSON_HELP)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print less: only the "
                                        "essentials.")]


class Format(StrEnum):
    table = "table"
    md = "md"


def register(app: typer.Typer) -> None:
    app.command("diff", help=DIFF_HELP)(diff_command)
    app.command("history", help=HISTORY_HELP)(history_command)
    app.command("pr-summary", help=PR_SUMMARY_HELP)(pr_summary_command)
    app.command("search", help=SEARCH_HELP)(search_command)
    app.command("site", help=SITE_HELP)(site_command)


def _opener(ctx: typer.Context) -> CatalogOpener:
    """Opens the catalog at a revision (None: the work tree), each one once."""
    opened: dict[str | None, Catalog] = {}

    def open_at(rev: str | None) -> Catalog:
        if rev not in opened:
            opened[rev] = common.open_catalog(ctx, rev=rev)
        return opened[rev]

    return open_at


def _repo(ctx: typer.Context) -> tuple[Path, str]:
    """The git repository around the catalog and the catalog's folder in it."""
    from envctl.catalog import find_root
    from envctl.errors import EnvctlError
    from envctl.git import toplevel

    root = find_root(explicit=common.state(ctx).catalog)
    top = toplevel(root)
    if top is None:
        raise EnvctlError(f"{root} is not in a git repository", rule="not-a-repo",
                          fix="run inside the catalog's clone")
    subdir = root.resolve().relative_to(top.resolve()).as_posix()
    return top, "" if subdir == "." else subdir


# -- diff -------------------------------------------------------------------------------------


def diff_command(
    ctx: typer.Context,
    sides: Annotated[list[str] | None, typer.Argument(
        help="A and B: NAME:TAG, REQ_ID:FULL_ID (either with @REV) or a lockfile path.",
        metavar="A [B]", show_default=False)] = None,
    *,
    rev: Annotated[list[str] | None, typer.Option(
        "--rev", help="A git revision; give it once or twice (see above).",
        show_default=False)] = None,
    platform: Annotated[list[str] | None, typer.Option(
        "--platform", "-p", help="Only these platforms.", show_default=False)] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table (terminal) or md "
                                        "(markdown).")] = Format.table,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when there are "
                                            "differences (like git diff).")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    from envctl.errors import EnvctlError
    from envctl.report.diff import diff_locks
    from envctl.report.sides import load_side, lock_of, predecessor

    sides, revs = list(sides or []), list(rev or [])
    if len(sides) > 2 or len(revs) > 2:
        raise EnvctlError("give at most two sides and two --rev", rule="usage",
                          fix="see 'envctl diff --help'")
    open_at = _opener(ctx)
    if not sides:
        if not revs:
            raise EnvctlError("nothing to compare", rule="usage",
                              fix="give A and B, one NAME:TAG, or --rev REV [--rev REV2]")
        _catalog_diff(open_at, revs, fmt=fmt, quiet=quiet, as_json=as_json,
                      exit_code=exit_code, platforms=platform)
        return
    if len(sides) == 1 and not revs:
        new = load_side(open_at, sides[0], all_sides=sides)
        if new.alias is None:
            raise EnvctlError("a lockfile alone has nothing to be compared with",
                              rule="usage", fix="give a second side")
        catalog = open_at(new.rev)
        before = predecessor(catalog, new.alias)
        if before is None:
            raise EnvctlError(
                f"{new.alias} has no earlier version to compare with", rule="usage",
                fix="name both sides: envctl diff NAME:OLD NAME:NEW (or use --rev for a "
                    "mutable tag's past)")
        at = f"@{new.rev}" if new.rev else ""
        old_lock, old_label = lock_of(catalog, before), f"{before}{at}"
        result = diff_locks(old_lock, new.lock, old_label=old_label, new_label=new.label,
                            new_platforms=new.platforms)
    else:
        a_rev = revs[0] if revs else None
        b_rev = revs[1] if len(revs) > 1 else a_rev
        text_a, text_b = (sides[0], sides[0]) if len(sides) == 1 else sides
        if len(sides) == 1 and len(revs) == 1:
            b_rev = None  # one side, one --rev: that revision against the work tree
        old = load_side(open_at, text_a, a_rev, all_sides=sides)
        new = load_side(open_at, text_b, b_rev, all_sides=sides)
        result = diff_locks(old.lock, new.lock, old_label=old.label, new_label=new.label,
                            old_platforms=old.platforms, new_platforms=new.platforms)
    if platform:
        result = _only_platforms(result, platform)
    _render_env_diff(result, fmt=fmt, quiet=quiet, as_json=as_json)
    if exit_code and result.changed:
        raise typer.Exit(1)


def _only_platforms(diff: EnvDiff, platforms: list[str]) -> EnvDiff:
    from dataclasses import replace

    wanted = set(platforms)
    return replace(diff, platforms=[
        p for p in diff.platforms if wanted & {part.strip() for part in p.platform.split("→")}
    ])


_STYLE = {"added": "green", "removed": "red", "upgraded": "cyan", "downgraded": "yellow",
          "rebuilt": "magenta", "changed": "blue"}


def _rows_table(diff: EnvDiff) -> object:
    from rich.markup import escape
    from rich.table import Table

    from envctl.report.render import package_rows

    rows, cut = package_rows(diff)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("platform", "", "package", "change", "old", "new"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = _STYLE.get(row.change, "")
        change = f"{row.mark} {row.change}" + (f" ({row.detail})" if row.detail else "")
        table.add_row(escape(row.platforms), row.manager, escape(row.name),
                      f"[{style}]{escape(change)}[/{style}]", escape(row.old),
                      escape(row.new))
    if cut:
        table.add_row("", "", f"… and {cut} more", "", "", "")
    return table


def _render_env_diff(diff: EnvDiff, *, fmt: Format, quiet: bool, as_json: bool) -> None:
    from rich.markup import escape

    if as_json:
        common.print_json(diff.to_dict())
        return
    if fmt is Format.md:
        from envctl.report.render import markdown_env_diffs

        typer.echo(markdown_env_diffs([diff]), nl=False)
        return
    out = common.console()
    out.print(f"[bold]{escape(diff.old)} → {escape(diff.new)}[/bold]: "
              f"{escape(diff.summary_body)}")
    if not quiet and any(p.changes for p in diff.platforms):
        out.print(_rows_table(diff))


def _rev_label(open_at: CatalogOpener, rev: str | None) -> str:
    from envctl.catalog import GitSource

    if rev is None:
        return "work tree"
    source = open_at(rev).source
    return f"{rev} ({source.rev[:12]})" if isinstance(source, GitSource) else rev


def _catalog_diff(open_at: CatalogOpener, revs: list[str], *, fmt: Format, quiet: bool,
                  as_json: bool, exit_code: bool, platforms: list[str] | None) -> None:
    from dataclasses import replace

    from envctl.report.changes import catalog_diff

    old_rev, new_rev = revs[0], (revs[1] if len(revs) > 1 else None)
    result = catalog_diff(open_at(old_rev), open_at(new_rev),
                          old_label=_rev_label(open_at, old_rev),
                          new_label=_rev_label(open_at, new_rev))
    if platforms:
        result.changes = [
            replace(c, packages=_only_platforms(c.packages, platforms)) if c.packages else c
            for c in result.changes
        ]
    if as_json:
        common.print_json(result.to_dict())
    elif fmt is Format.md:
        from envctl.report.render import markdown_catalog_diff

        typer.echo(markdown_catalog_diff(result), nl=False)
    else:
        _render_catalog_diff(common.console(), result, quiet=quiet)
    if exit_code and result.changes:
        raise typer.Exit(1)


def _render_catalog_diff(out: Console, diff: CatalogDiff, *, quiet: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from envctl.report.render import change_label

    count = len(diff.changes)
    out.print(f"[bold]{escape(diff.old)} → {escape(diff.new)}[/bold]: {count} tag "
              f"change{'s' if count != 1 else ''}")
    if diff.changes:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("tag", "change", "details"):
            table.add_column(column, overflow="fold")
        for c in diff.changes:
            detail = c.packages.summary_body if c.packages else (c.note or "")
            if c.packages and c.compared_with:
                detail = f"vs {c.compared_with}: {detail}"
            table.add_row(escape(str(c.alias)), escape(change_label(c)), escape(detail))
        out.print(table)
    if not quiet:
        for c in diff.changes:
            if c.packages and any(p.changes for p in c.packages.platforms):
                out.print()
                out.print(f"[bold]{escape(c.packages.summary)}[/bold]")
                out.print(_rows_table(c.packages))
    for error in diff.errors:
        common.err_console().print(f"[yellow]warning:[/yellow] {escape(error)}")


# -- history ----------------------------------------------------------------------------------


def history_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="NAME:TAG (NAME alone: :latest, or the newest "
                                        "frozen tag when 'latest' is not declared).")],
    *,
    rev: Annotated[str | None, typer.Option(
        "--rev", help="Read history up to this revision (default: the protected branch, "
        "or origin/<branch>).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    from envctl.catalog import Catalog, GitSource
    from envctl.git import rev_parse
    from envctl.names import parse_alias
    from envctl.report.history import branch_rev, history_of

    alias = parse_alias(name)
    top, subdir = _repo(ctx)
    work_tree = common.open_catalog(ctx)
    branch = work_tree.config.branch
    sha = rev_parse(top, rev) if rev else branch_rev(top, branch)
    result = history_of(top, alias, sha, catalog=Catalog(GitSource(top, sha, subdir=subdir)),
                        branch=rev or branch, subdir=subdir, work_tree=work_tree)
    if as_json:
        common.print_json(result.to_dict())
        return
    out = common.console()
    if result.alias != str(alias):
        out.print(f"[dim]{escape(name)} means {escape(result.alias)} (no 'latest' tag: the "
                  "newest frozen tag)[/dim]")
    kind = {"absent": "removed"}.get(result.kind, result.kind)
    out.print(f"[bold]{escape(result.alias)}[/bold] ({escape(kind)}) on "
              f"{escape(result.branch)} at {sha[:12]}")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("date", "event", "position", "author", "commit", "message"):
        table.add_column(column, overflow="fold")
    for e in result.entries:
        # A pointer's position is its target; otherwise the full_id per platform (short:
        # --json has the whole req_id:full_id).
        position = f"→ {e.target}" if e.target else "\n".join(
            f"{p} {i.split(':')[-1][:10]}" for p, i in e.ids.items())
        table.add_row(e.date.replace("T", " ").removesuffix("Z")[:16], e.event,
                      escape(position), escape(e.author), e.commit[:10], escape(e.message))
    out.print(table)


# -- pr-summary -------------------------------------------------------------------------------


def pr_summary_command(
    ctx: typer.Context,
    *,
    base: Annotated[str, typer.Option("--base", help="The protected branch's commit the PR "
                                      "starts from.")],
    head: Annotated[str, typer.Option("--head", help="The PR's commit.")] = "HEAD",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the markdown here instead of stdout.",
        show_default=False)] = None,
    append: Annotated[bool, typer.Option("--append", help="Append to --output (a job "
                                         "summary file) instead of replacing it.")] = False,
    collapse: Annotated[bool | None, typer.Option(
        "--collapse/--expand", help="Force sections closed or open (default: by size).",
        show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Run the catalog's rules "
                                        "on the range.")] = True,
    work_tree: Annotated[bool, typer.Option(
        "--work-tree", help="Read HEAD's side from the work tree, so locks a dry-run "
        "'envctl resolve --changed-since BASE' wrote show as package diffs (marked "
        "provisional).")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    from envctl.report.pr_summary import pr_summary, render_pr_summary

    top, subdir = _repo(ctx)
    root = top / subdir if subdir else top
    summary = pr_summary(top, base, head, subdir=subdir, check=check,
                         work_tree=root if work_tree else None)
    if as_json:
        common.print_json(summary.to_dict())
        return
    text = render_pr_summary(summary, collapse=collapse)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a" if append else "w", encoding="utf-8") as handle:
        handle.write(text)
    if not quiet:
        common.err_console().print(f"wrote {output}")


# -- search -----------------------------------------------------------------------------------


def search_command(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(
        help="Part of a name, description or owner.", show_default=False)] = None,
    *,
    package: Annotated[str | None, typer.Option(
        "--package", help="NAME[=VERSION[=BUILD]] or a match spec (NAME>=1,<2): only tags "
        "whose lock installs it.",
        show_default=False)] = None,
    rev: Annotated[str | None, typer.Option("--rev", help="Search the catalog at this git "
                                            "revision.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    from envctl.errors import EnvctlError
    from envctl.report.search import parse_package_query, search

    if not text and not package:
        raise EnvctlError("nothing to search for", rule="usage",
                          fix="give TEXT, --package NAME[=VERSION], or both")
    query = parse_package_query(package) if package else None
    hits = search(common.open_catalog(ctx, rev=rev), text, query)
    if as_json:
        common.print_json([h.to_dict() for h in hits])
        return
    out = common.console()
    if not hits:
        what = " and ".join(x for x in (repr(text) if text else "",
                                        f"package {query}" if query else "") if x)
        out.print(f"no environment matches {escape(what)}")
        return
    table = Table(show_edge=False, pad_edge=False)
    columns = ("name", "tags", "packages" if query else "description", "owners")
    for column in columns:
        table.add_column(column, overflow="fold")
    for hit in hits:
        tags = " ".join(t.tag + ("*" if t.mutable else "")
                        + (f" ({', '.join(t.aliases)})" if t.aliases else "") for t in hit.tags)
        if query:
            found = sorted({f"{p.name} {p.version}" + (f" {p.build}" if p.build else "")
                            + f" [{p.manager}]" for t in hit.tags for p in t.packages})
            third = "; ".join(found)
        else:
            third = hit.description
        table.add_row(escape(hit.name), escape(tags), escape(third),
                      escape(", ".join(hit.owners)))
    out.print(table)


# -- site -------------------------------------------------------------------------------------


def site_command(
    ctx: typer.Context,
    outdir: Annotated[Path, typer.Argument(help="Folder to write (replaced as a whole).")],
    *,
    rev: Annotated[str | None, typer.Option("--rev", help="Build from this git revision of "
                                            "the catalog.", show_default=False)] = None,
    title: Annotated[str | None, typer.Option("--title", help="Page title (default: "
                                              "catalog.yaml's name).",
                                              show_default=False)] = None,
    quiet: QuietOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"outdir", "pages", '
                                          '"envs"} as JSON when done.')] = False,
) -> None:
    from envctl.report.site import build_site

    catalog = common.open_catalog(ctx, rev=rev)
    err = common.err_console()
    if quiet or as_json or not err.is_terminal:
        result = build_site(catalog, outdir, title=title)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn("pages"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), console=err, transient=True) as bar:
            task = bar.add_task("", total=None)

            def step(done: int, total: int, name: str) -> None:
                bar.update(task, completed=done, total=total, description=name)

            result = build_site(catalog, outdir, title=title, progress=step)
    if as_json:
        common.print_json({"outdir": str(result.outdir), "pages": result.pages,
                           "envs": result.envs})
    elif not quiet:
        common.console().print(f"wrote {result.pages} pages ({result.envs} environments) to "
                               f"{result.outdir}; open {result.outdir / 'index.html'}")
