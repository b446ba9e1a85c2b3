"""Wires the command groups together and owns the single error handler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from envctl import __version__
from envctl.cli import LazyCommands, common

if TYPE_CHECKING:
    from typer._click import (  # type: ignore[import-not-found]
        Command,
        Context,
        HelpFormatter,
    )
    from typer._click.shell_completion import (  # type: ignore[import-not-found]
        CompletionItem,
    )

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
    """The one handler: every error a user can cause becomes one line on stderr.

    - an ``EnvctlError`` -> ``error: <file: message [rule] — fix>``, its exit code: 1, or
      127/126 for a command ``envctl run`` cannot find/execute, as a shell answers;
    - a usage error (unknown command or option, missing or bad value) -> ``error: <click's
      message> — see 'envctl CMD --help'``, exit 2, as click's own convention;
    - Ctrl-C -> exit 130, an aborted prompt -> ``error: aborted``, exit 1.

    Anything else is a bug and keeps its traceback. ``--help``, ``--version``, shell
    completion and a bare ``envctl`` (help, exit 2) behave as click makes them.
    ``CliRunner.invoke`` calls :meth:`main`, so tests see exactly what a user sees.
    """

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        from envctl.errors import EnvctlError

        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  **extra)
        except EnvctlError as exc:
            report_error(exc)
            raise SystemExit(exc.exit_code) from None
        except (_USAGE_ERRORS + _CLICK_ERRORS + _ABORTS) as exc:
            if not standalone_mode:
                raise  # an embedding caller asked for click's exceptions
            raise SystemExit(_report_click_error(exc)) from None
        if not standalone_mode:
            return result
        # Without standalone mode click returns an Exit's code, or the command's own value.
        raise SystemExit(result if isinstance(result, int) else 0)


def _click_exceptions() -> tuple[tuple[type[Exception], ...], ...]:
    """(usage errors, other click errors, aborts) of the click typer parses with: its own
    copy since typer 0.26, the click package before."""
    try:
        from typer._click import exceptions as ce  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as ce
    aborts = tuple({typer.Abort, ce.Abort} if hasattr(ce, "Abort") else {typer.Abort})
    return (ce.UsageError,), (ce.ClickException,), aborts


_USAGE_ERRORS, _CLICK_ERRORS, _ABORTS = _click_exceptions()


def _report_click_error(exc: Exception) -> int:
    """One line for a click error; the exit code."""
    from rich.markup import escape

    out = common.err_console()
    if isinstance(exc, _ABORTS):
        out.print("[red]error:[/red] aborted")
        return 1
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A bare group: click already printed its help (rich help prints on creation).
        message = exc.format_message()  # type: ignore[attr-defined]
        if message.strip():
            typer.echo(message)
        return int(getattr(exc, "exit_code", 2))
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    if isinstance(exc, _USAGE_ERRORS):
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "envctl"
        message += f" — see '{command} --help'"
    out.print(f"[red]error:[/red] {escape(message)}")
    return int(getattr(exc, "exit_code", 1))


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


class EnvctlCommands(EnvctlGroup):
    """The root group of ``envctl``: every command is known by name (:data:`COMMANDS`), but
    only the one being run (or helped, or completed) is imported and built, so start-up
    does not pay for typer converting ~40 commands and importing their modules."""

    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(
            self.commands,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
            suggest_commands=self.suggest_commands,
        )

    def list_commands(self, ctx: Context) -> list[str]:
        # TyperGroup's lists ``commands.items()``, which would build every command.
        return list(self.commands)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if self._listing:
            assert isinstance(self.commands, LazyCommands)
            return self.commands.summary(cmd_name)
        return super().get_command(ctx, cmd_name)

    @contextmanager
    def listing(self) -> Iterator[None]:
        """While the commands are only listed (``envctl --help``, completing a command
        name), :meth:`get_command` gives summaries: all a list shows, none of the cost of
        building ~40 commands with every parameter."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        with self.listing():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        # Completes this group's own words (command names, options); a subcommand's are
        # completed by that command, resolved outside this.
        with self.listing():
            return super().shell_complete(ctx, incomplete)


app = typer.Typer(
    name="envctl",
    help=HELP,
    cls=EnvctlCommands,
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


# Installed once for every command (create, run and export can warn), not by the module of
# one command group: those are imported only when one of their commands runs.
common.show_envctl_warnings()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
