"""Coverage-guided fuzzing of envctl's parsers with atheris (libFuzzer), for long runs.

Not collected by pytest (the bounded hypothesis tests beside it run in CI). Run one target
until stopped, or for a time, from the repository root::

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz/atheris_fuzz.py TARGET -max_total_time=600 -rss_limit_mb=1024

TARGET is one of ``yaml``, ``name``, ``spec``, ``config``, ``meta``, ``lock``. A target's
contract: every input ends in a result or an ``EnvctlError`` (the lockfile's ``full_id``
may also raise ``ValueError``, which ``envctl.lockcheck`` turns into a refusal); anything
else, a hang (``-timeout``, default 25 s here) or memory over ``-rss_limit_mb`` is a crash
that libFuzzer saves as ``crash-*`` / ``timeout-*`` for replay:
``python tests/fuzz/atheris_fuzz.py TARGET crash-...``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["envctl"]):
    from envctl import yamlio
    from envctl.config import parse_config
    from envctl.errors import EnvctlError
    from envctl.meta import parse_meta
    from envctl.names import parse_ref
    from envctl.resolve.lockfile import read_lock
    from envctl.spec import parse_env_file


def _yaml(data: bytes) -> None:
    with contextlib.suppress(EnvctlError):
        yamlio.load(data, file="f.yaml")


def _name(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(400)
    with contextlib.suppress(EnvctlError):
        parse_ref(text)


def _model(parse: Callable[[object], object]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        with contextlib.suppress(EnvctlError):
            parse(yamlio.load(data, file="f.yaml"))

    return run


def _lock(data: bytes) -> None:
    try:
        lock = read_lock(data, file="l.conda-lock.yml")
    except EnvctlError:
        return
    for platform in lock.platforms:
        with contextlib.suppress(EnvctlError, ValueError):
            lock.full_id(platform)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "yaml": _yaml,
    "name": _name,
    "spec": _model(lambda d: parse_env_file(d, file="envs/x.yaml")),
    "config": _model(parse_config),
    "meta": _model(lambda d: parse_meta(d, file="m.meta.yaml")),
    "lock": _lock,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    argv = [sys.argv[0], *sys.argv[2:]]
    if not any(a.startswith("-timeout=") for a in argv):
        argv.append("-timeout=25")
    atheris.Setup(argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
