"""``envctl run``'s exit codes when the command cannot start, and ``envctl envs --full``,
on environments laid out by hand (no channel needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.materialize import RECORD_FILE

runner = CliRunner()
REQ, FULL = "a" * 8 + "1" * 32, "b" * 8 + "2" * 32


def make_env(prefix: Path) -> Path:
    (prefix / "bin").mkdir(parents=True)
    (prefix / "conda-meta").mkdir()
    (prefix / RECORD_FILE).write_text(json.dumps({
        "alias": "team/app:v1", "req_id": REQ, "full_id": FULL, "platform": "linux-64"}))
    tool = prefix / "bin" / "hello"
    tool.write_text("#!/bin/sh\necho \"hello from $CONDA_PREFIX\"\nexit 7\n")
    tool.chmod(0o755)
    plain = prefix / "bin" / "plain"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    return prefix


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVCTL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def run(*args: str):
    result = runner.invoke(app, ["run", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def one_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.skipif(os.name == "nt", reason="POSIX shells' exit codes")
def test_run_exit_codes_follow_the_shell(home: Path, tmp_path: Path, capfd) -> None:
    prefix = make_env(tmp_path / "env")
    # The command's own code comes back.
    assert run("--prefix", str(prefix), "--", "hello").exit_code == 7
    assert capfd.readouterr().out == f"hello from {prefix}\n"
    # Not there: 127, as a shell says it.
    assert one_line(run("--prefix", str(prefix), "--", "nosuchcmd"), 127) == (
        "error: command not found: nosuchcmd [command-not-found] — is it installed in the "
        f"environment? ({prefix}/bin)")
    assert one_line(run("--prefix", str(prefix), "--", "./nope"), 127) == (
        "error: command not found: ./nope [command-not-found] — check the path")
    # There but not executable (or a folder): 126.
    assert one_line(run("--prefix", str(prefix), "--", "plain"), 126) == (
        f"error: cannot run plain: {prefix}/bin/plain is not executable "
        "[command-not-executable] — make it executable (chmod +x), or run it through its "
        "interpreter")
    assert one_line(run("--prefix", str(prefix), "--", str(tmp_path)), 126) == (
        f"error: cannot run {tmp_path}: {tmp_path} is a directory [command-not-executable] — "
        "give the path of a program, not of a folder")


def test_envs_prints_whole_ids_with_full(home: Path) -> None:
    make_env(home / "envs" / "app")
    short = runner.invoke(app, ["envs"])
    assert short.exit_code == 0, short.output
    assert f"{REQ[:8]}:{FULL[:8]}" in short.stdout and REQ not in short.stdout
    full = runner.invoke(app, ["envs", "--full"])
    assert full.exit_code == 0, full.output
    assert f"{REQ}:{FULL}" in full.stdout.replace("\n", "")
    assert json.loads(runner.invoke(app, ["envs", "--json"]).stdout)[0]["id"] == f"{REQ}:{FULL}"
