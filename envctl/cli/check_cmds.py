"""``envctl check``, ``envctl hook install``, the hidden ``envctl hook-impl`` and
``envctl codeowners``: the catalog's rules outside the pre-receive hook, and its installer.

The commands only render; the rules are ``envctl.check`` / ``envctl.policy`` (the same
code the hook runs) and the files come from ``envctl.hook`` and ``envctl.codeowners``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envctl.cli import common

if TYPE_CHECKING:
    from envctl.policy import Violation

CHECK_HELP = """\
Apply the catalog's rules to a range of commits, as the pre-receive hook would.

With --base and --head: every commit in base..head is judged against its parent
(frozen tags, signed locks, lock contents, pointers, names, paths, safe YAML),
by the catalog.yaml of BASE, and HEAD must descend from BASE. This is the CI job
for pull requests on servers that cannot run hooks (GitHub). With --history:
audit every commit of the protected branch after the fact. Each problem is one
line [bold]file \\[tag]: message \\[rule] — fix[/bold]; the exit code is 1 if any.

[bold]Examples[/bold]

  envctl check --base origin/main --head HEAD
  envctl check --base "$BASE_SHA" --head "$GITHUB_SHA" --json
  envctl check --history                      # the whole protected branch
  envctl check --history --branch release --repo /srv/git/catalog.git
  envctl --catalog catalog check --base main --head HEAD   # a catalog in a subfolder
"""

HOOK_HELP = """\
Install the server-side hook that enforces the catalog's rules on every push.

[bold]Examples[/bold]

  envctl hook install /srv/git/catalog.git
"""

INSTALL_HELP = """\
Write a pre-receive hook into GIT_DIR (a bare repository, or a .git folder).

The hook is a tiny shell script that runs envctl with this interpreter, so
install envctl where the git server's user can run it. It refuses pushes that
break the rules with 'remote: envctl: refused ...' lines, answers within 4 s
(ENVCTL_HOOK_DEADLINE) and takes the pusher's identity from GL_USERNAME,
GITHUB_USER_LOGIN, REMOTE_USER or ENVCTL_PUSHER. An existing hook not written
by envctl is kept unless --force.

[bold]Examples[/bold]

  envctl hook install /srv/git/catalog.git
  envctl hook install .git --force
"""

HOOK_IMPL_HELP = "What the installed pre-receive hook runs (reads 'old new ref' lines)."

CODEOWNERS_HELP = """\
Write a CODEOWNERS file that gives each environment's file and locks to its owners.

Owners without '@' get one (ranking -> @ranking; @org/team stays); catalog
admins own catalog.yaml and are added to every environment. The default output
is .github/CODEOWNERS at the repository root.

[bold]Examples[/bold]

  envctl codeowners
  envctl codeowners --output CODEOWNERS
  envctl codeowners --check            # in CI: exit 1 if the file is out of date
"""

JsonOpt = common.JsonOpt


def register(app: typer.Typer) -> None:
    app.command("check", help=CHECK_HELP)(check_command)
    hook_app = typer.Typer(help=HOOK_HELP, no_args_is_help=True, rich_markup_mode="rich")
    hook_app.command("install", help=INSTALL_HELP)(hook_install_command)
    app.add_typer(hook_app, name="hook")
    app.command("hook-impl", help=HOOK_IMPL_HELP, hidden=True)(hook_impl_command)
    app.command("codeowners", help=CODEOWNERS_HELP)(codeowners_command)


# -- check ------------------------------------------------------------------------------------


def _repo_and_subdir(ctx: typer.Context, repo: Path | None) -> tuple[Path, str]:
    """The repository to read and the catalog's folder in it ('' at the root)."""
    from envctl.catalog import find_root
    from envctl.errors import CatalogError, EnvctlError
    from envctl.git import toplevel

    explicit = common.state(ctx).catalog
    if repo is not None:
        if explicit is None:
            return repo, ""
        folder = Path(explicit)
        if folder.is_absolute():
            folder = folder.resolve().relative_to(repo.resolve())
        return repo, folder.as_posix().strip("/").removeprefix(".")
    try:
        root = find_root(explicit=explicit)
    except CatalogError:
        root = None
    start = root or Path.cwd()
    top = toplevel(start)
    if top is None:
        raise EnvctlError(
            f"{start} is not in a git repository", rule="not-a-repo",
            fix="run inside the catalog's clone, or pass --repo DIR",
        )
    subdir = ""
    if root is not None and root.resolve() != top.resolve():
        subdir = root.resolve().relative_to(top.resolve()).as_posix()
    return top, subdir


def check_command(
    ctx: typer.Context,
    *,
    base: Annotated[str | None, typer.Option("--base", help="The protected branch's commit "
                                             "the change starts from.")] = None,
    head: Annotated[str | None, typer.Option("--head", help="The commit to check.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Audit every commit of the "
                                          "protected branch instead.")] = False,
    branch: Annotated[str | None, typer.Option("--branch", help="With --history: the branch "
                                               "(default: catalog.yaml's branch).")] = None,
    repo: Annotated[Path | None, typer.Option("--repo", help="The git repository (default: "
                                              "the one around the catalog or the current "
                                              "folder).", show_default=False)] = None,
    pusher: Annotated[str | None, typer.Option("--pusher", help="Check owners as if this "
                                               "user pushed.")] = None,
    as_json: JsonOpt = False,
) -> None:
    from envctl.check import check_history, check_range
    from envctl.errors import EnvctlError

    path, subdir = _repo_and_subdir(ctx, repo)
    if history:
        found = check_history(path, branch, subdir=subdir)
        what = f"the history of {branch or 'the protected branch'}"
    else:
        if not base or not head:
            raise EnvctlError("give --base and --head (or --history)", rule="usage",
                              fix="e.g. envctl check --base origin/main --head HEAD")
        found = check_range(path, base, head, subdir=subdir, pusher=pusher, require=True)
        what = f"{base}..{head}"
    _report(found, what, as_json=as_json)


def _report(found: list[Violation], what: str, *, as_json: bool) -> None:
    from rich.markup import escape

    if as_json:
        common.print_json([v.to_dict() for v in found])
    else:
        out = common.console()
        for violation in found:
            out.print(f"[red]refused:[/red] {escape(violation.render())}")
        if found:
            out.print(f"[red]{len(found)} problem(s) in {escape(what)}[/red]")
        else:
            out.print(f"[green]ok: {escape(what)} follows the catalog's rules[/green]")
    if found:
        raise typer.Exit(1)


# -- hooks -------------------------------------------------------------------------------------


def hook_install_command(
    git_dir: Annotated[Path, typer.Argument(help="The server's repository (bare, or .git).")],
    *,
    force: Annotated[bool, typer.Option("--force", help="Replace a hook envctl did not "
                                        "write.")] = False,
) -> None:
    from envctl.hook import install_hook

    path = install_hook(git_dir, force=force)
    common.console().print(f"installed {path}")


def hook_impl_command() -> None:
    from envctl.hook import main

    raise typer.Exit(main(stdin=sys.stdin))


# -- codeowners --------------------------------------------------------------------------------


def codeowners_command(
    ctx: typer.Context,
    *,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write "
                                                "(default: .github/CODEOWNERS at the "
                                                "repository root).", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Do not write; exit 1 if the file "
                                        "differs.")] = False,
) -> None:
    from envctl.codeowners import codeowners_text, default_output
    from envctl.git import toplevel

    root = common.catalog_root(ctx)
    catalog = common.open_catalog(ctx)
    top = toplevel(root)
    prefix = root.relative_to(top.resolve()).as_posix() if top is not None else ""
    text = codeowners_text(catalog, prefix="" if prefix == "." else prefix)
    path = output or default_output(root, top)
    out = common.console()
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            out.print(f"[red]{path} is out of date[/red]; run 'envctl codeowners'")
            raise typer.Exit(1)
        out.print(f"{path} is up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {path}")
