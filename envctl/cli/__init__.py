"""The command line: thin typer commands that call the Python API and render with rich.

Start-up time matters (``envctl show`` is run by people and by flows, ``envctl --help``
by everyone): the root group knows every command's name from :data:`COMMANDS` and
imports a command's module, and lets typer build it, only when that command is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from typer._click import Command  # type: ignore[import-not-found]
    from typer.core import MarkupMode
    from typer.models import CommandInfo, TyperInfo

#: Every top-level command and group, in the order ``envctl --help`` lists them (typer's:
#: plain commands in registration order, then groups), and the module whose
#: ``register(app)`` adds it. A new command is one line here; ``tests/cli/test_startup.py``
#: checks this table against what the modules register.
COMMANDS: dict[str, str] = {
    "init": "envctl.cli.catalog_cmds",
    "new": "envctl.cli.catalog_cmds",
    "tag": "envctl.cli.catalog_cmds",
    "bump": "envctl.cli.catalog_cmds",
    "lint": "envctl.cli.inspect_cmds",
    "list": "envctl.cli.inspect_cmds",
    "show": "envctl.cli.inspect_cmds",
    "resolve": "envctl.cli.resolve_cmds",
    "demo": "envctl.cli.demo_cmd",
    "create": "envctl.cli.consume_cmds",
    "envs": "envctl.cli.consume_cmds",
    "run": "envctl.cli.consume_cmds",
    "info": "envctl.cli.consume_cmds",
    "extend": "envctl.cli.consume_cmds",
    "export": "envctl.cli.consume_cmds",
    "adopt": "envctl.cli.adopt_cmds",
    "pack": "envctl.cli.adopt_cmds",
    "check": "envctl.cli.check_cmds",
    "hook-impl": "envctl.cli.check_cmds",
    "codeowners": "envctl.cli.check_cmds",
    "diff": "envctl.cli.report_cmds",
    "history": "envctl.cli.report_cmds",
    "pr-summary": "envctl.cli.report_cmds",
    "search": "envctl.cli.report_cmds",
    "site": "envctl.cli.report_cmds",
    "verify": "envctl.cli.lifecycle_cmds",
    "gc": "envctl.cli.lifecycle_cmds",
    "retire": "envctl.cli.lifecycle_cmds",
    "sbom": "envctl.cli.lifecycle_cmds",
    "audit": "envctl.cli.lifecycle_cmds",
    "kernel": "envctl.cli.adopt_cmds",
    "hook": "envctl.cli.check_cmds",
    "ci": "envctl.cli.ci_cmds",
}

#: Command modules, each with ``register(app)``, in registration order.
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))


def import_command_module(module_name: str) -> Any | None:
    """The module, or None while it does not exist yet (a group still being written; the
    others work without it)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None


def register_all(app: typer.Typer) -> None:
    """Register every command on ``app`` eagerly, the plain typer way (what the lazy
    root group of ``envctl`` must be equivalent to)."""
    for module_name in COMMAND_MODULES:
        module = import_command_module(module_name)
        if module is not None:
            module.register(app)


def registered(module_name: str) -> dict[str, CommandInfo | TyperInfo]:
    """What ``module_name``'s ``register(app)`` adds, by command name, in typer's order.

    Registering is cheap (typer only records the functions); converting them into click
    commands is what costs, so that is left to :class:`LazyCommands`.
    """
    from typer.main import get_command_name, solve_typer_info_defaults

    module = import_command_module(module_name)
    if module is None:
        return {}
    scratch = typer.Typer()
    module.register(scratch)
    found: dict[str, CommandInfo | TyperInfo] = {}
    for command_info in scratch.registered_commands:
        assert command_info.callback is not None
        name = command_info.name or get_command_name(command_info.callback.__name__)
        found[name] = command_info
    for group_info in scratch.registered_groups:
        name = solve_typer_info_defaults(group_info).name
        assert isinstance(name, str) and name, f"{module_name}: a group without a name"
        found[name] = group_info
    return found


class LazyCommands(MutableMapping[str, "Command"]):
    """The root group's ``commands``: every name known up front, each command imported and
    built by typer on first access, exactly as ``get_group_from_info`` would build it.

    ``extra`` holds commands registered on the root Typer itself (built eagerly by typer).
    """

    def __init__(
        self,
        extra: Mapping[str, Command],
        *,
        pretty_exceptions_short: bool,
        rich_markup_mode: MarkupMode,
        suggest_commands: bool,
        names: Mapping[str, str] = COMMANDS,
    ) -> None:
        self._modules = dict(names)
        self._built: dict[str, Command] = dict(extra)
        self._registered: dict[str, dict[str, CommandInfo | TyperInfo]] = {}
        self._summaries: dict[str, Command] = {}
        self._broken: dict[str, Exception] = {}  # module -> why it does not import
        self._options: dict[str, Any] = {
            "pretty_exceptions_short": pretty_exceptions_short,
            "rich_markup_mode": rich_markup_mode,
        }
        self._suggest_commands = suggest_commands

    def _info(self, name: str) -> CommandInfo | TyperInfo | None:
        module_name = self._modules[name]
        if module_name in self._broken:
            raise self._broken[module_name]
        if module_name not in self._registered:
            try:
                self._registered[module_name] = registered(module_name)
            except Exception as exc:
                self._broken[module_name] = exc  # tried once per run, not once per command
                raise
        info = self._registered[module_name].get(name)
        if info is None:  # the module is missing, or no longer registers it
            del self._modules[name]
        return info

    def _build(self, info: CommandInfo | TyperInfo) -> Command:
        from typer.main import get_command_from_info, get_group_from_info
        from typer.models import TyperInfo

        if isinstance(info, TyperInfo):
            return get_group_from_info(info, suggest_commands=self._suggest_commands,
                                       **self._options)
        return get_command_from_info(info, **self._options)

    def summary(self, name: str) -> Command | None:
        """``name`` as a list of commands shows it (name, help, short help, hidden, panel,
        deprecated), or None if there is no such command.

        Typer builds it from the registered command with the parameters left out (a
        stand-in function with the same name and docstring; a group without its
        subcommands), so help text follows typer's own rules while the costly part,
        analysing every parameter of every command, is skipped. Once a command is
        built for real, that is returned instead.
        """
        if name in self._built:
            return self._built[name]
        if name not in self._modules:
            return None
        if name not in self._summaries:
            try:
                info = self._info(name)
            except Exception:  # a broken module must not take help down
                # Listed nowhere; running it says what is wrong (__getitem__).
                return None
            if info is None:
                return None
            self._summaries[name] = self._build(_without_parameters(info))
        return self._summaries[name]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            try:
                info = self._info(name) if name in self._modules else None
            except Exception as exc:
                # A broken install (a dependency missing, a module that does not import)
                # is one clear line for this command; the others still work.
                from envctl.errors import EnvctlError

                raise EnvctlError(
                    f"the {name!r} command cannot load: {type(exc).__name__}: {exc}",
                    rule="broken-install",
                    fix="reinstall envctl with its dependencies (pip install --force-reinstall "
                    "envctl, or pip install -e '.[test]' in a checkout)",
                ) from exc
            if info is None:
                raise KeyError(name)
            self._built[name] = self._build(info)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        known = name in self._built or name in self._modules
        self._built.pop(name, None)
        self._modules.pop(name, None)
        if not known:
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        # Names only: listing commands (help, completion, "did you mean") must not build them.
        # A snapshot: building a command whose module is missing forgets its name.
        yield from [name for name, module in self._modules.items() if module not in self._broken]
        yield from (name for name in list(self._built) if name not in self._modules)

    def __len__(self) -> int:
        return len(self._modules.keys() | self._built.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._modules or name in self._built


def _without_parameters(info: CommandInfo | TyperInfo) -> CommandInfo | TyperInfo:
    """A copy of ``info`` that typer turns into a command with no parameters (or a group
    with no subcommands), everything else as the original's."""
    import copy

    from typer.models import TyperInfo

    bare = copy.copy(info)
    if isinstance(info, TyperInfo):
        assert info.typer_instance is not None
        bare.typer_instance = copy.copy(info.typer_instance)
        bare.typer_instance.registered_commands = []
        bare.typer_instance.registered_groups = []
        return bare
    callback = info.callback
    assert callback is not None

    def stand_in() -> None:  # pragma: no cover - listed, never invoked
        raise AssertionError(f"{callback.__name__} is only a summary")

    stand_in.__name__ = callback.__name__
    stand_in.__qualname__ = callback.__qualname__
    stand_in.__doc__ = callback.__doc__
    bare.callback = stand_in
    return bare
