"""Wires the command groups together and owns the single error handler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from envctl import __version__
from envctl.cli import common

HELP = """\
envctl: a git-backed catalog of named conda/PyPI environments.

Environments are named like Docker images: [bold]team/project/env:tag[/bold].
Immutable tags (v1, v2...) never change once locked; mutable tags
(latest, stable...) are pointers whose history git keeps.

[bold]Examples[/bold]

  envctl demo                       # the whole loop on a throw-away catalog
  envctl init my-catalog            # start a catalog repository
  envctl new ranking/base:v1 --dep python=3.11 --dep numpy
  envctl bump ranking/base:v1 --to v2 --dep pandas --move stable
  envctl lint
  envctl show ranking/base:stable --json
"""


class EnvctlGroup(TyperGroup):
    """Turns every ``EnvctlError`` into one clear line on stderr and a non-zero exit.

    Anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        from envctl.errors import EnvctlError

        try:
            return super().invoke(ctx)
        except EnvctlError as exc:
            report_error(exc)
            raise SystemExit(exc.exit_code) from None


def report_error(exc: Exception) -> None:
    from rich.markup import escape

    from envctl.errors import MultipleErrors

    out = common.err_console()
    if isinstance(exc, MultipleErrors):
        for error in exc.errors:
            out.print(f"[red]error:[/red] {escape(error.render())}")
        out.print(f"[red]{escape(exc.message)}[/red]")
    else:
        out.print(f"[red]error:[/red] {escape(str(exc))}")


app = typer.Typer(
    name="envctl",
    help=HELP,
    cls=EnvctlGroup,
    rich_markup_mode="rich",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"envctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    *,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            "-C",
            envvar="ENVCTL_CATALOG",
            help="Catalog directory (default: the nearest parent with a catalog.yaml).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    common.state(ctx).catalog = catalog


def _register() -> None:
    # Each module adds its commands; importing them is cheap (heavy libraries load lazily).
    from envctl.cli import register_all

    register_all(app)


_register()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
