"""The command line: thin typer commands that call the Python API and render with rich."""

from __future__ import annotations

import importlib

import typer

#: Command modules, each with ``register(app)``; a new group is one line here.
COMMAND_MODULES = (
    "envctl.cli.catalog_cmds",
    "envctl.cli.inspect_cmds",
    "envctl.cli.resolve_cmds",
    "envctl.cli.demo_cmd",
    "envctl.cli.consume_cmds",
    "envctl.cli.adopt_cmds",
    "envctl.cli.check_cmds",
    "envctl.cli.ci_cmds",
    "envctl.cli.report_cmds",
    "envctl.cli.lifecycle_cmds",
)


def register_all(app: typer.Typer) -> None:
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a group still being written; the others work without it
        module.register(app)
