"""Every command's ``--help`` has examples: walks the whole command tree, so a command
added without them fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from envctl.cli.main import app

runner = CliRunner()


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command`` (a click group), depth first, with the
    words that invoke it. Hidden commands (``hook-impl``, which the installed hook execs)
    are internal: no user reads their help."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            yield from walk(sub, (*path, name))


COMMANDS = [path for path, _ in walk(typer.main.get_command(app))]


def test_the_walk_finds_groups_and_their_subcommands() -> None:
    assert {(), ("show",), ("kernel",), ("kernel", "install"), ("kernel", "list"),
            ("kernel", "remove"), ("ci", "run"), ("hook", "install")} <= set(COMMANDS)
    assert ("hook-impl",) not in COMMANDS
    assert len(COMMANDS) > 35


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "envctl")
def test_help_has_examples(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.stdout, f"'envctl {' '.join(path)} --help' has no Examples"
    # Each example is a command line of this very command.
    examples = result.stdout.split("Examples", 1)[1]
    assert f"envctl {' '.join(path)}".strip() in examples
