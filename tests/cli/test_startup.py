"""Start-up stays light: ``envctl show`` and ``envctl --help`` import only what they use,
and the lazily built root group is the same CLI as typer's eagerly built one.

Imports are checked in a fresh interpreter (``sys.modules``), never by timing.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from envctl import yamlio
from envctl.cli import COMMAND_MODULES, COMMANDS, LazyCommands, register_all, registered
from envctl.cli.main import HELP, EnvctlGroup, app, main

#: Never needed to show a name or print help: solver, lock tooling, templates, S3, the
#: consumer API (lookup, store, materialize).
HEAVY = ("rattler", "conda_lock", "jinja2", "boto3", "botocore", "uv", "envctl.api",
         "envctl.lookup", "envctl.materialize", "envctl.store", "envctl.resolve.api")

PROBE = """\
import json, sys
from envctl.cli.main import app
try:
    app(sys.argv[2:], prog_name="envctl")
except SystemExit as exc:
    code = exc.code
else:
    code = None
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def modules_after(tmp_path: Path, *args: str) -> tuple[Any, set[str]]:
    """The exit code of ``envctl ARGS`` run in a fresh interpreter, and what it imported."""
    report = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", PROBE, str(report), *args], check=True,
                   capture_output=True, cwd=tmp_path, timeout=120)
    data = json.loads(report.read_text())
    return data["code"], set(data["modules"])


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def command_modules(modules: set[str]) -> set[str]:
    return modules & set(COMMANDS.values())


def test_importing_the_cli_imports_no_command() -> None:
    script = "import json, sys, envctl.cli.main; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                          text=True, timeout=120)
    modules = set(json.loads(proc.stdout))
    assert heavy(modules) == []
    assert command_modules(modules) == set()
    assert "envctl.catalog" not in modules


def frozen_catalog(root: Path) -> Path:
    """One locked tag (a pending one computes its provisional id with rattler)."""
    request = {"version": "1", "platform": "linux-64", "channels": ["conda-forge"],
               "dependencies": ["numpy"], "pypi": [], "virtual_packages": {},
               "base_full_id": None, "exclude_newer": "2024-01-01T00:00:00Z"}
    files = {
        "catalog.yaml": "channels:\n  conda-forge: https://x.invalid/cf\n"
                        "platforms: [linux-64]\n",
        "envs/team/app.yaml": "tags:\n  v1:\n    dependencies: [numpy]\n",
        "locks/team/app/v1.meta.yaml": yamlio.dump({
            "version": "1", "alias": "team/app:v1", "exclude_newer": "2024-01-01T00:00:00Z",
            "resolved_at": "2024-01-02T03:04:05Z", "resolved_by": "ci",
            "envctl_version": "0.1.0", "lock_sha256": "0" * 64,
            "platforms": {"linux-64": {"req_id": "1" * 40, "full_id": "2" * 40,
                                       "request": request}},
        }),
        "locks/team/app/v1.conda-lock.yml": yamlio.dump({
            "version": "1", "metadata": {},
            "package": [{"name": "numpy", "version": "1.26.4", "manager": "conda",
                         "platform": "linux-64", "url": "https://x.invalid/numpy",
                         "hash": {"md5": "d" * 32, "sha256": "e" * 64}, "build": "py_0"}],
        }),
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_show_imports_only_what_it_uses(tmp_path: Path) -> None:
    root = frozen_catalog(tmp_path / "catalog")
    code, modules = modules_after(tmp_path, "--catalog", str(root), "show", "team/app:v1")
    assert code in (0, None)
    assert heavy(modules) == []
    assert command_modules(modules) == {"envctl.cli.inspect_cmds"}


def test_help_builds_no_command(tmp_path: Path) -> None:
    code, modules = modules_after(tmp_path, "--help")
    assert code == 0
    assert heavy(modules) == []
    assert "envctl.catalog" not in modules
    group: Any = typer.main.get_command(app)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert group.main(["--help"], prog_name="envctl", standalone_mode=False) == 0
    assert "show" in out.getvalue()
    assert isinstance(group.commands, LazyCommands)
    assert list(group.commands._built) == []  # listed from summaries, none built


# -- the lazy root group is typer's eager one -----------------------------------------------


def eager_app() -> typer.Typer:
    """``envctl`` as plain typer builds it: every command registered up front."""
    eager = typer.Typer(name="envctl", help=HELP, cls=EnvctlGroup, rich_markup_mode="rich",
                        no_args_is_help=True,
                        context_settings={"help_option_names": ["-h", "--help"]},
                        pretty_exceptions_enable=False)
    eager.callback()(main)
    register_all(eager)
    return eager


@pytest.fixture(scope="module")
def apps() -> tuple[typer.Typer, typer.Typer]:
    return eager_app(), app


@pytest.fixture(scope="module")
def groups(apps: tuple[typer.Typer, typer.Typer]) -> tuple[Any, Any]:
    return typer.main.get_command(apps[0]), typer.main.get_command(apps[1])


def test_commands_table_matches_what_the_modules_register(groups: tuple[Any, Any]) -> None:
    eager, lazy = groups
    assert list(eager.commands) == list(COMMANDS)
    assert list(lazy.list_commands(None)) == list(COMMANDS)
    for module in COMMAND_MODULES:
        for name in registered(module):
            assert COMMANDS[name] == module, name


def test_summaries_list_like_the_commands(groups: tuple[Any, Any]) -> None:
    eager, lazy = groups
    for name, command in eager.commands.items():
        summary = lazy.commands.summary(name)
        for attribute in ("name", "help", "short_help", "epilog", "hidden", "deprecated",
                          "rich_help_panel"):
            assert getattr(summary, attribute) == getattr(command, attribute), (name, attribute)
        assert summary.get_short_help_str() == command.get_short_help_str()


@pytest.mark.parametrize("args", [["--help"], [], ["show", "--help"], ["ci", "--help"],
                                  ["kernel"], ["shw"], ["show", "--bogus"], ["--version"]],
                         ids=" ".join)
def test_output_is_the_eager_clis(apps: tuple[typer.Typer, typer.Typer],
                                  args: list[str]) -> None:
    eager, lazy = apps
    runner = CliRunner(env={"COLUMNS": "100"})
    expected = runner.invoke(eager, args)
    got = runner.invoke(lazy, args)
    assert (got.exit_code, got.stdout, got.stderr) == (
        expected.exit_code, expected.stdout, expected.stderr)


@pytest.mark.parametrize("words", [[], ["ci"], ["kernel"]], ids=lambda w: " ".join(w) or "-")
@pytest.mark.parametrize("incomplete", ["", "h", "--"])
def test_completion_is_the_eager_clis(groups: tuple[Any, Any], words: list[str],
                                      incomplete: str) -> None:
    def complete(group: Any) -> list[tuple[str, str | None]]:
        ctx = group.make_context("envctl", [], resilient_parsing=True)
        for word in words:
            _, command, _ = group.resolve_command(ctx, [word])
            ctx = command.make_context(word, [], parent=ctx, resilient_parsing=True)
            group = command
        return [(item.value, item.help) for item in group.shell_complete(ctx, incomplete)]

    eager, lazy = groups
    assert complete(lazy) == complete(eager)


def test_a_command_module_that_does_not_import_breaks_only_that_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken install (a dependency missing) takes one command down with one clear line,
    not help, completion or the other commands (found by review)."""
    (tmp_path / "envctl_broken_cmds.py").write_text("import a_dependency_that_is_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(COMMANDS, "broken", "envctl_broken_cmds")
    runner = CliRunner()
    shown = runner.invoke(app, ["--help"])
    assert shown.exit_code == 0 and "lint" in shown.stdout and "broken" not in shown.stdout
    assert runner.invoke(app, ["--version"]).exit_code == 0
    ran = runner.invoke(app, ["broken"])
    assert ran.exit_code == 1, ran.output
    assert "the 'broken' command cannot load: ModuleNotFoundError" in ran.stderr
    assert "Traceback" not in ran.output
