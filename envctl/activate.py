"""Running a command inside an environment, as ``conda activate`` would set it up."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from envctl.errors import EnvctlError


def activation_env(prefix: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of an activated environment: PATH first, CONDA_PREFIX, and the env's
    own variables (conda's ``conda-meta/state`` ``env_vars``)."""
    env = dict(os.environ if base is None else base)
    bindir = str(prefix / ("Scripts" if os.name == "nt" else "bin"))
    old_prefix = env.get("CONDA_PREFIX")
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    if old_prefix:  # leave the previously active env's bin out: this one replaces it
        parts = [p for p in parts if p != os.path.join(old_prefix, "bin")]
    env["PATH"] = os.pathsep.join([bindir, *parts])
    env["CONDA_PREFIX"] = str(prefix)
    env["CONDA_DEFAULT_ENV"] = str(prefix)
    env.pop("PYTHONHOME", None)
    env.pop("VIRTUAL_ENV", None)  # a caller's venv must not look active inside
    state = prefix / "conda-meta" / "state"
    if state.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            variables = json.loads(state.read_text()).get("env_vars", {})
            env.update({str(k): str(v) for k, v in variables.items()})
    return env


def activation_command(prefix: Path, argv: Sequence[str]) -> list[str]:
    """``argv``, wrapped in a shell that sources ``etc/conda/activate.d/*.sh`` when there are
    any (packages set variables there, e.g. JAVA_HOME); a plain exec otherwise."""
    scripts = sorted((prefix / "etc" / "conda" / "activate.d").glob("*.sh"))
    if not scripts or os.name == "nt":
        return list(argv)
    source = 'for f in "$CONDA_PREFIX"/etc/conda/activate.d/*.sh; do . "$f" || exit 1; done; '
    return ["bash", "-c", source + 'exec "$@"', "envctl-activate", *argv]


#: Exit codes a shell uses when it cannot run a command (POSIX): the CLI exits with them.
COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126


class CommandError(EnvctlError):
    """A command that cannot be started in the environment; ``exit_code`` is the shell's."""

    default_rule = "command-not-found"

    def __init__(self, message: str, *, exit_code: int, rule: str, fix: str) -> None:
        super().__init__(message, rule=rule, fix=fix)
        self.exit_code = exit_code


def run_activated(prefix: Path, argv: Sequence[str],
                  base: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` in the activated environment at ``prefix``; its exit code.

    A command that is not there raises :class:`CommandError` with exit code 127, one that
    is not executable 126 (what a shell answers), before anything starts: looked up on the
    activated PATH, so the message names the environment's ``bin``.
    """
    import shutil
    import subprocess

    env = activation_env(prefix, base)
    program = argv[0]
    bindir = prefix / ("Scripts" if os.name == "nt" else "bin")
    where = f"is it installed in the environment? ({bindir})"
    if os.sep in program or (os.altsep and os.altsep in program):
        candidate = program if os.path.exists(program) else None
        where = "check the path"
    else:
        dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
        candidate = shutil.which(program, path=os.pathsep.join(dirs)) or next(
            (p for d in dirs if os.path.exists(p := os.path.join(d, program))), None)
    if candidate is None:
        raise _not_found(program, where)
    if os.path.isdir(candidate) or not os.access(candidate, os.X_OK):
        raise _not_executable(program, candidate)
    try:
        return subprocess.run(activation_command(prefix, list(argv)), env=env).returncode
    except FileNotFoundError:  # removed between the check and the start
        raise _not_found(program, where) from None
    except PermissionError:
        raise _not_executable(program, candidate) from None


def _not_found(program: str, fix: str) -> CommandError:
    return CommandError(f"command not found: {program}", exit_code=COMMAND_NOT_FOUND,
                        rule="command-not-found", fix=fix)


def _not_executable(program: str, path: str) -> CommandError:
    if os.path.isdir(path):
        what, fix = "a directory", "give the path of a program, not of a folder"
    else:
        what, fix = "not executable", "make it executable (chmod +x), or run it through its " \
            "interpreter"
    return CommandError(f"cannot run {program}: {path} is {what}",
                        exit_code=COMMAND_NOT_EXECUTABLE, rule="command-not-executable", fix=fix)
