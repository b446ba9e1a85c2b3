"""What every command module shares: consoles, the catalog option, JSON output, warnings."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from envctl.catalog import Catalog


@dataclass
class State:
    catalog: Path | None = None


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def open_catalog(ctx: typer.Context, *, rev: str | None = None) -> Catalog:
    from envctl.catalog import open_catalog as _open

    return _open(state(ctx).catalog, rev=rev)


def catalog_root(ctx: typer.Context) -> Path:
    """The catalog's work tree: --catalog, $ENVCTL_CATALOG, or found from the current folder."""
    from envctl.catalog import find_root

    return find_root(explicit=state(ctx).catalog)


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), stable key order for scripts and diffs."""
    import json  # lazy: 'envctl --help' and the table outputs do without it

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


JSON_HELP = "Print machine-readable JSON instead of a table."

#: The ``--json`` flag every command that prints results takes.
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def show_envctl_warnings() -> None:
    """Print envctl's own warnings (a retired tag being created) as one yellow line.

    The core warns with ``warnings.warn`` (it never prints); on the command line that
    should read like the error handler's lines, not like a Python traceback.
    """
    from envctl.lifecycle import RetiredTagWarning  # a light import: CLI start-up stays fast

    original = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, RetiredTagWarning):
            from rich.markup import escape

            err_console().print(f"[yellow]warning:[/yellow] {escape(str(message))}")
            return
        original(message, category, *args, **kwargs)

    warnings.showwarning = show
