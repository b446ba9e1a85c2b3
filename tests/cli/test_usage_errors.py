"""The one handler (``EnvctlGroup.main``): every error a user can cause is one line on
stderr. Usage errors exit 2 (click's convention) and name the help to read; envctl's own
errors exit 1; help, version, completion and a bare group behave as click makes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from envctl.cli.main import EnvctlGroup, app
from envctl.errors import EnvctlError

runner = CliRunner()
BOX = set("╭╮╰╯│─┃━")


def invoke(*args: str, **kwargs: object):
    result = runner.invoke(app, list(args), **kwargs)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def usage_error(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert not BOX & set(lines[0]), lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def no_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)


def test_a_mistyped_command_says_what_was_meant() -> None:
    assert usage_error("shw") == (
        "error: No such command 'shw'. Did you mean 'show'? — see 'envctl --help'")
    assert usage_error("kernel", "remov") == (
        "error: No such command 'remov'. Did you mean 'remove'? — see 'envctl kernel --help'")


def test_a_missing_option_names_the_command_help() -> None:
    assert usage_error("tag", "ranking/base:stable") == (
        "error: Missing option '--points-to'. — see 'envctl tag --help'")


def test_a_bad_choice_and_an_unknown_option() -> None:
    line = usage_error("diff", "A", "B", "--format", "xml")
    assert line.startswith("error: Invalid value for '--format': ")
    assert "'xml' is not one of 'table', 'md'" in line
    assert line.endswith(" — see 'envctl diff --help'")
    line = usage_error("new", "x:v1", "--deps", "x")
    assert line.startswith("error: No such option: --deps")
    assert "--dep" in line.removeprefix("error: No such option: --deps")
    assert line.endswith(" — see 'envctl new --help'")


def test_envctl_errors_stay_one_line_with_exit_1() -> None:
    result = invoke("lint")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "[not-a-catalog]" in line


def test_help_version_and_a_bare_group_are_unchanged() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "Examples" in result.stdout and result.stderr == ""
    result = invoke("show", "-h")
    assert result.exit_code == 0 and "Usage: envctl show" in result.stdout
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"envctl {__import__('envctl').__version__}\n")
    for bare in ([], ["kernel"]):
        result = invoke(*bare)  # no_args_is_help: the help, on stdout, exit 2 as click does
        assert result.exit_code == 2 and "Usage: envctl" in result.stdout
        assert result.stderr == ""


def test_completion_still_answers() -> None:
    result = invoke(env={"_ENVCTL_COMPLETE": "complete_bash", "COMP_WORDS": "envctl sh",
                         "COMP_CWORD": "1"}, prog_name="envctl")
    assert result.exit_code == 0
    assert "show" in result.stdout.split()


# -- the handler on its own, with commands that fail in each way ----------------------------------

probe = typer.Typer(cls=EnvctlGroup, pretty_exceptions_enable=False)


@probe.command("fail")
def _fail(how: str) -> None:
    if how == "envctl":
        raise EnvctlError("it broke", file="envs/a.yaml", rule="broken", fix="mend it")
    if how == "abort":
        raise typer.Abort()
    if how == "interrupt":
        raise KeyboardInterrupt
    if how == "exit":
        raise typer.Exit(3)
    if how == "bug":
        raise ValueError("a bug")


@probe.command("other")
def _other() -> None:
    pass


@pytest.mark.parametrize(("how", "code", "stderr"), [
    ("envctl", 1, "error: envs/a.yaml: it broke [broken] — mend it\n"),
    ("abort", 1, "error: aborted\n"),
    ("interrupt", 130, ""),
    ("exit", 3, ""),
    ("fine", 0, ""),
])
def test_each_way_out_has_its_exit_code(how: str, code: int, stderr: str) -> None:
    result = runner.invoke(probe, ["fail", how])
    assert (result.exit_code, result.stderr) == (code, stderr)


def test_a_bug_keeps_its_traceback() -> None:
    result = runner.invoke(probe, ["fail", "bug"])
    assert isinstance(result.exception, ValueError)


def test_standalone_mode_off_hands_back_click_exceptions() -> None:
    # An embedding caller (the demo) asks for exceptions and exit codes instead of exits.
    assert probe(["fail", "exit"], standalone_mode=False) == 3
    with pytest.raises(SystemExit) as info:  # envctl's errors are still reported, one line
        probe(["fail", "envctl"], standalone_mode=False)
    assert info.value.code == 1
    from typer._click.exceptions import UsageError

    with pytest.raises(UsageError):
        probe(["nope"], standalone_mode=False)
