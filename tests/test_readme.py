"""The README stays true: its examples parse and every command it tours exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.cli.main import app
from envctl.config import parse_config
from envctl.spec import parse_env_file

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_catalog_yaml_example_parses() -> None:
    config_block = next(b for b in blocks("yaml") if b.startswith('version: "1"'))
    config = parse_config(yamlio.load(config_block, file="README catalog.yaml"))
    assert config.is_mutable("dev-42") and not config.is_mutable("v3")


def test_environment_file_example_parses() -> None:
    env_block = next(b for b in blocks("yaml") if b.startswith("description:"))
    env = parse_env_file(yamlio.load(env_block, file="README env"), file="README env")
    assert list(env.tags) == ["v1", "v2", "stable"]


def tour_commands() -> list[list[str]]:
    commands = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("envctl "):
                commands.append(shlex.split(line)[1:])
    return commands


@pytest.mark.parametrize("argv", tour_commands(), ids=lambda a: " ".join(a[:2]))
def test_every_toured_command_and_option_exists(argv: list[str]) -> None:
    # --help after the command path proves the command exists; unknown options fail parsing.
    words = [a for a in argv if not a.startswith("-")]
    path = words[:2] if words[:1] in (["ci"], ["hook"], ["kernel"]) else words[:1]
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert option in result.output, f"{' '.join(path)} has no {option}"
