"""``envctl demo``: the main job in one command, on a throw-away catalog and a local channel.

Each step runs the real CLI in-process and prints the command first, so the
demo doubles as a tour a user can replay by hand.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from envctl.cli import common

DEMO_ENV = "demo/science/base"

EPILOG = """\
[bold]Examples[/bold]

  envctl demo                 # in a temporary directory, removed afterwards
  envctl demo ./envctl-demo   # keep the catalog and channel to explore
"""


Step = tuple[str, list[str]]


def demo_steps(root: Path, channel: str) -> list[Step]:
    """The tour: (what it shows, argv). ``git`` steps run git; the rest run envctl."""
    cat = ["--catalog", str(root)]
    prefix = root.parent / "env"
    return [
        (
            "Create a catalog repository with one local channel and two platforms",
            ["init", str(root), "--channel", f"local={channel}",
             "--platform", "linux-64", "--platform", "osx-arm64"],
        ),
        (
            "Add an environment with an immutable tag v1",
            [*cat, "new", f"{DEMO_ENV}:v1", "--dep", "python=3.11", "--dep", "tinynum",
             "--description", "Small data-science base for the demo", "--owner", "science"],
        ),
        (
            "Point the mutable tag 'stable' at it",
            [*cat, "tag", f"{DEMO_ENV}:stable", "--points-to", "v1"],
        ),
        (
            "Bump: v2 copies v1, adds a package and moves 'stable' in the same change",
            [*cat, "bump", f"{DEMO_ENV}:v1", "--to", "v2", "--dep", "tinyframe",
             "--move", "stable"],
        ),
        ("Check the whole catalog", [*cat, "lint"]),
        ("List what the catalog holds", [*cat, "list"]),
        ("Show what 'stable' means now", [*cat, "show", f"{DEMO_ENV}:stable"]),
        (
            "Commit: the commit time becomes each tag's exclude_newer, so resolves reproduce",
            ["git", "-C", str(root), "add", "-A", "&&", "commit", "-m", f"Add {DEMO_ENV}"],
        ),
        (
            "Resolve every tag into a conda-lock v1 lockfile with rattler (offline)",
            [*cat, "resolve", "--all"],
        ),
        ("The same show, now with req_id:full_id per platform", [*cat, "show", f"{DEMO_ENV}:v2"]),
        (
            "Create the environment 'stable' points to, verifying every package's sha256",
            [*cat, "create", f"{DEMO_ENV}:stable", "--prefix", str(prefix)],
        ),
        (
            "Run a command inside it",
            [*cat, "run", "--prefix", str(prefix), "--", "python", "-c",
             "import tinyframe, tinynum; print('tinyframe', tinyframe.__version__, "
             "'tinynum', tinynum.__version__)"],
        ),
    ]


def _git_env() -> dict[str, str]:
    # A fresh machine may have no git identity; the demo must still commit.
    env = dict(os.environ)
    for var, value in (
        ("GIT_AUTHOR_NAME", "envctl demo"),
        ("GIT_AUTHOR_EMAIL", "demo@envctl.invalid"),
        ("GIT_COMMITTER_NAME", "envctl demo"),
        ("GIT_COMMITTER_EMAIL", "demo@envctl.invalid"),
    ):
        env.setdefault(var, value)
    return env


def _git_commands(argv: list[str]) -> list[list[str]]:
    """``git -C DIR a b && c d`` is two git calls sharing ``git -C DIR``."""
    prefix, rest = argv[:3], argv[3:]
    commands = []
    while rest:
        cut = rest.index("&&") if "&&" in rest else len(rest)
        commands.append([*prefix, *rest[:cut]])
        rest = rest[cut + 1 :]
    return commands


def _run_git_step(argv: list[str]) -> None:
    for command in _git_commands(argv):
        subprocess.run(command, check=True, env=_git_env(), stdout=subprocess.DEVNULL)


def run_demo(directory: Path) -> None:
    from envctl.cli.main import app
    from envctl.testing.channel import build_channel, channel_url

    out = common.console()
    channel_dir = directory / "channel"
    out.rule("[bold]Build a local conda channel (offline, byte-identical every run)")
    build_channel(channel_dir, overwrite=True)
    out.print(f"channel at {channel_url(channel_dir)}\n")
    root = directory / "catalog"
    for title, argv in demo_steps(root, channel_url(channel_dir)):
        out.rule(f"[bold]{title}")
        if argv[0] == "git":
            out.print(f"[dim]$ {' && '.join(shlex.join(c) for c in _git_commands(argv))}[/dim]")
            _run_git_step(argv)
            out.print()
            continue
        out.print(f"[dim]$ envctl {shlex.join(argv)}[/dim]")
        try:
            app(argv, prog_name="envctl", standalone_mode=False)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        out.print()
    out.rule("[bold green]Done")
    out.print(f"The catalog is a git repository at {root}; try: envctl --catalog {root} show "
              f"{DEMO_ENV}:v1 --json")


def demo(
    *,
    directory: Annotated[
        Path | None,
        typer.Argument(help="Where to build the demo (default: a temporary directory).",
                       show_default=False),
    ] = None,
) -> None:
    """Run the whole loop on a throw-away catalog and a local channel: no network needed."""
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="envctl-demo-") as tmp:
            run_demo(Path(tmp))
    else:
        directory.mkdir(parents=True, exist_ok=True)
        run_demo(directory.resolve())


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(demo)
