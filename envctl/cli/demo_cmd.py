"""``envctl demo``: the main job in one command, on a throw-away catalog and a local channel.

Each step runs the real CLI in-process and prints the command first, so the
demo doubles as a tour a user can replay by hand.
"""

from __future__ import annotations

import shlex
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


def demo_steps(root: Path, channel: str) -> list[tuple[str, list[str]]]:
    """The tour: (what it shows, envctl argv). Later steps build on earlier ones."""
    cat = ["--catalog", str(root)]
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
    ]


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
