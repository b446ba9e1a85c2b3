"""Export a locked environment for other tools.

Formats (each pins exactly what the lock installs):

- ``conda-lock``: the lockfile itself, every platform (any conda-lock reader);
- ``explicit``: conda's ``@EXPLICIT`` list of package URLs with their md5, one
  platform, conda packages only (the format has no place for PyPI packages);
- ``environment.yml``: ``name=version=build`` pins plus a ``pip:`` section;
- ``requirements.txt``: the PyPI part with ``--hash=sha256:`` for
  ``pip install --require-hashes --no-deps``;
- ``pixi.toml``: a pixi workspace with the exact versions per platform.

Pure functions over :class:`~envctl.resolve.lockfile.LockData`; the CLI writes files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from envctl.errors import EnvctlError, NotFoundError

if TYPE_CHECKING:
    from envctl.resolve.lockfile import LockData, LockedPackage

FORMATS = ("conda-lock", "explicit", "environment.yml", "requirements.txt", "pixi.toml")
# Accepted spellings: the brief and users write these too.
ALIASES = {"environment-yml": "environment.yml", "env.yml": "environment.yml",
           "requirements": "requirements.txt", "pixi": "pixi.toml", "lock": "conda-lock"}


def normalize_format(name: str) -> str:
    fmt = ALIASES.get(name, name)
    if fmt not in FORMATS:
        raise EnvctlError(
            f"unknown export format {name!r}",
            rule="unknown-format",
            fix=f"use one of: {', '.join(FORMATS)}",
        )
    return fmt


def _platform_packages(lock: LockData, platform: str) -> Sequence[LockedPackage]:
    packages = lock.for_platform(platform)
    if not packages:
        raise NotFoundError(
            f"the lock has no packages for {platform}",
            rule="unknown-platform",
            fix=f"use --platform with one of: {', '.join(lock.platforms)}",
        )
    return sorted(packages, key=lambda p: (p.manager, p.name))


def _q(text: str) -> str:
    """A YAML/TOML-safe double-quoted scalar (JSON strings are both)."""
    return json.dumps(text)


def explicit(lock: LockData, platform: str) -> str:
    packages = _platform_packages(lock, platform)
    pypi = [p.name for p in packages if p.manager == "pip"]
    if pypi:
        raise EnvctlError(
            f"the explicit format holds conda packages only; this environment also installs "
            f"PyPI packages ({', '.join(pypi[:5])})",
            rule="format-cannot-hold",
            fix="export environment.yml (or conda-lock), or requirements.txt for the PyPI part",
        )
    lines = ["# This file may be used to create an environment using:",
             "# $ conda create --name <env> --file <this file>",
             f"# platform: {platform}", "@EXPLICIT"]
    for p in packages:
        lines.append(f"{p.url}#{p.md5}" if p.md5 else f"{p.url}#sha256:{p.sha256}")
    return "\n".join(lines) + "\n"


def environment_yml(lock: LockData, platform: str, *, name: str) -> str:
    packages = _platform_packages(lock, platform)
    lines = [f"name: {_q(name)}", "channels:"]
    lines += [f"  - {_q(c)}" for c in lock.channels]
    lines += ["  - nodefaults", "dependencies:"]
    conda = [p for p in packages if p.manager == "conda"]
    pypi = [p for p in packages if p.manager == "pip"]
    lines += [f"  - {_q(f'{p.name}={p.version}={p.build}' if p.build else f'{p.name}={p.version}')}"
              for p in conda]
    if pypi:
        lines.append("  - pip:")
        lines += [f"    - {_q(f'{p.name}=={p.version}')}" for p in pypi]
    return "\n".join(lines) + "\n"


def requirements_txt(lock: LockData, platform: str) -> str:
    packages = [p for p in _platform_packages(lock, platform) if p.manager == "pip"]
    lines = [f"# PyPI part of the environment for {platform}; install with",
             "# pip install --no-deps --require-hashes -r <this file>"]
    lines += [f"{p.name}=={p.version} --hash=sha256:{p.sha256}" for p in packages]
    return "\n".join(lines) + "\n"


def pixi_toml(lock: LockData, *, name: str) -> str:
    lines = ["[workspace]", f"name = {_q(name)}",
             f"channels = [{', '.join(_q(c) for c in lock.channels)}]",
             f"platforms = [{', '.join(_q(p) for p in sorted(lock.platforms))}]", ""]
    for platform in sorted(lock.platforms):
        packages = _platform_packages(lock, platform)
        conda = [p for p in packages if p.manager == "conda"]
        pypi = [p for p in packages if p.manager == "pip"]
        lines.append(f"[target.{platform}.dependencies]")
        lines += [f"{_q(p.name)} = {{ version = {_q('==' + p.version)}"
                  + (f", build = {_q(p.build)}" if p.build else "") + " }" for p in conda]
        lines.append("")
        if pypi:
            lines.append(f"[target.{platform}.pypi-dependencies]")
            lines += [f"{_q(p.name)} = {_q('==' + p.version)}" for p in pypi]
            lines.append("")
    return "\n".join(lines)


def export(
    lock: LockData, lock_bytes: bytes, fmt: str, *, platform: str, name: str
) -> bytes:
    """The bytes of ``lock`` in format ``fmt`` (see :data:`FORMATS`)."""
    fmt = normalize_format(fmt)
    if fmt == "conda-lock":
        return lock_bytes
    if fmt == "explicit":
        text = explicit(lock, platform)
    elif fmt == "environment.yml":
        text = environment_yml(lock, platform, name=name)
    elif fmt == "requirements.txt":
        text = requirements_txt(lock, platform)
    else:
        text = pixi_toml(lock, name=name)
    return text.encode("utf-8")
