"""Make a host CPython the interpreter of a prefix built from the test channel.

The test channel's ``python`` package ships no interpreter (a real one would
be tens of megabytes and platform-specific). Instead the prefix becomes a
venv-style home of a host interpreter with the same major.minor:
``bin/python3.X`` is a symlink to the host's base interpreter and
``pyvenv.cfg`` names its directory, so ``<prefix>/bin/python`` imports from
``<prefix>/lib/python3.X/site-packages`` and not from the host's.

The package's post-link script does this when the installer runs link
scripts (``rattler.install(..., execute_link_scripts=True)``).
``link_host_python`` does the same from Python, for installers that do not
run them; it is idempotent, so calling it after a post-link run is harmless.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from envctl.testing.channel import PYTHON_MAJOR_MINOR

HOST_PYTHON_ENV = "ENVCTL_HOST_PYTHON"

_PROBE = (
    "import os, platform, sys; "
    "b = getattr(sys, '_base_executable', '') or sys.executable; "
    "print('%d.%d' % sys.version_info[:2], platform.python_version(), os.path.realpath(b))"
)


def _running_major_minor() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


class HostPythonError(RuntimeError):
    """No usable host interpreter for a prefix."""


def host_python_matches() -> bool:
    """Whether the running interpreter can stand in for the channel's python."""
    return _running_major_minor() == PYTHON_MAJOR_MINOR


def find_host_python(
    major_minor: str = PYTHON_MAJOR_MINOR, candidates: Sequence[str] | None = None
) -> tuple[Path, str]:
    """The real path and full version of a host base interpreter of ``major_minor``.

    Tried in order: ``candidates`` if given, else ``$ENVCTL_HOST_PYTHON``, the
    running interpreter, ``python<major_minor>`` and ``python3`` on PATH.
    The base interpreter is used, not a venv's, because a prefix cannot be a
    venv of a venv.
    """
    if candidates is None:
        candidates = [
            os.environ.get(HOST_PYTHON_ENV, ""),
            sys.executable,
            f"python{major_minor}",
            "python3",
        ]
    for cand in candidates:
        if not cand:
            continue
        if _running_major_minor() == major_minor and cand == sys.executable:
            base = getattr(sys, "_base_executable", "") or sys.executable
            return Path(os.path.realpath(base)), platform.python_version()
        exe = shutil.which(cand)
        if exe is None:
            continue
        try:
            out = subprocess.run(
                [exe, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        ver, full, path = out.split(" ", 2)
        if ver == major_minor and os.access(path, os.X_OK):
            return Path(path), full
    raise HostPythonError(
        f"no host python{major_minor} found (tried {', '.join(c for c in candidates if c)}); "
        f"set {HOST_PYTHON_ENV} to a python{major_minor} interpreter"
    )


def prefix_python_version(prefix: Path) -> str:
    """major.minor of the ``python`` package installed in ``prefix`` (from conda-meta)."""
    records = sorted((Path(prefix) / "conda-meta").glob("python-[0-9]*.json"))
    if not records:
        raise HostPythonError(f"{prefix} has no python package installed")
    version = str(json.loads(records[0].read_text())["version"])
    return ".".join(version.split(".")[:2])


def link_host_python(prefix: Path, python: str | None = None) -> Path:
    """Point ``prefix``'s python at a host interpreter; returns ``<prefix>/bin/python``."""
    prefix = Path(prefix)
    major_minor = prefix_python_version(prefix)
    real, full = find_host_python(major_minor, [python] if python else None)
    bindir = prefix / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name, target in (
        (f"python{major_minor}", str(real)),
        ("python3", f"python{major_minor}"),
        ("python", f"python{major_minor}"),
    ):
        link = bindir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    (prefix / "pyvenv.cfg").write_text(
        f"home = {real.parent}\ninclude-system-site-packages = false\nversion = {full}\n"
    )
    return bindir / "python"
