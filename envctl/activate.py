"""Running a command inside an environment, as ``conda activate`` would set it up."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path


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
