"""The pre-receive hook: refuse pushes that break the catalog's rules, and its installer.

git runs ``hooks/pre-receive`` in the server repository with one ``old new ref`` line per
updated ref on stdin (forty zeros: created or deleted), the pushed objects in a quarantine
visible only through the environment it passes (so every git call here keeps it:
``scrub=False``), and relays what the hook writes to stderr as ``remote: ...`` lines.
Exit 1 refuses the whole push; an accepted push prints nothing.

The hook answers within its own deadline (4 s, ``ENVCTL_HOOK_DEADLINE``) so that it
refuses rather than hangs inside GitHub's 5 s budget. Its import path is light: no typer,
rich, rattler, conda-lock, jinja2 or GitPython (rattler loads only when a lock is pushed).

The pusher's identity, where the server gives one, comes from ``GL_USERNAME`` (GitLab),
``GITHUB_USER_LOGIN`` (GitHub Enterprise), ``REMOTE_USER`` (HTTP behind a web server) or
``ENVCTL_PUSHER`` (set it in your own wrapper), in that order. Push options are accepted
and ignored.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from envctl.policy import RefUpdate

HOOK_NAME = "pre-receive"
MARKER = "# envctl pre-receive hook"
DEFAULT_DEADLINE = 4.0
DEADLINE_VAR = "ENVCTL_HOOK_DEADLINE"
IDENTITY_VARS = ("GL_USERNAME", "GITHUB_USER_LOGIN", "REMOTE_USER", "ENVCTL_PUSHER")
MAX_LINES = 50  # a pusher needs the first problems, not thousands of lines


class DeadlineExceeded(BaseException):
    """Raised by the alarm; a BaseException so no ``except Exception`` swallows it."""


def pusher_identity(environ: Mapping[str, str]) -> str | None:
    for var in IDENTITY_VARS:
        value = environ.get(var, "").strip()
        if value:
            return value
    return None


def parse_updates(text: str) -> list[RefUpdate]:
    from envctl.policy import RefUpdate

    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(ref=parts[2], old=parts[0], new=parts[1]))
    return updates


def refusal(ref: str, text: str) -> str:
    return f"envctl: refused {ref}: " + " ".join(text.split("\n"))


def judge(updates: list[RefUpdate], environ: Mapping[str, str], repo: str | Path = ".",
          ) -> list[str]:
    """The refusal lines for a push (empty: accepted)."""
    from envctl.check import Repo, check_update
    from envctl.errors import EnvctlError

    pusher = pusher_identity(environ)
    lines: list[str] = []
    with Repo(repo, scrub=False) as r:
        for update in updates:
            try:
                found = check_update(r, update, pusher=pusher)
            except EnvctlError as exc:
                lines.append(refusal(update.ref, exc.render()))
                continue
            lines.extend(refusal(update.ref, v.render()) for v in found)
    return lines


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise DeadlineExceeded


def main(stdin: TextIO | None = None, stderr: TextIO | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    stderr = sys.stderr if stderr is None else stderr
    try:
        deadline = float(environ.get(DEADLINE_VAR) or DEFAULT_DEADLINE)
    except ValueError:
        deadline = DEFAULT_DEADLINE
    text = (stdin or sys.stdin).read()
    updates = parse_updates(text)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    try:
        lines = judge(updates, environ)
    except DeadlineExceeded:
        lines = [
            refusal(u.ref, f"the check did not finish within {deadline:g} s [deadline] — "
                    "push fewer commits at a time; if it persists, tell the server's admin")
            for u in updates
        ]
    except Exception as exc:  # a bug: refuse with one clear line rather than a traceback
        if environ.get("ENVCTL_HOOK_DEBUG"):
            import traceback

            traceback.print_exc(file=stderr)
        lines = [
            refusal(u.ref, f"internal error {type(exc).__name__}: {exc} [internal] — this is "
                    "a bug in envctl; report it with the output of 'envctl check'")
            for u in updates
        ]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"envctl: ... and {len(lines) - MAX_LINES} more problems"]
    for line in lines:
        stderr.write(line + "\n")
    stderr.flush()
    return 1 if lines else 0


# -- installer --------------------------------------------------------------------------------


def hook_script(python: str) -> str:
    # ``-m envctl.hook`` rather than the typer CLI: it skips importing every command module
    # and typer/rich, which the hook does not need, and keeps the hook independent of them.
    return (
        "#!/bin/sh\n"
        f"{MARKER}: refuses pushes that break the catalog's rules.\n"
        "# Written by 'envctl hook install'; run it again to update. Do not edit.\n"
        f"exec {shlex.quote(python)} -m envctl.hook \"$@\"\n"
    )


def install_hook(git_dir: str | os.PathLike[str], *, python: str | None = None,
                 force: bool = False) -> Path:
    """Write the ``pre-receive`` hook into ``git_dir`` (a bare repository or a ``.git``).

    The hook runs envctl with the interpreter it was installed from (``python``).
    """
    from envctl.errors import EnvctlError
    from envctl.git import run_git

    repo = Path(git_dir)
    proc = run_git(repo, ["rev-parse", "--git-path", "hooks"], check=False)
    if proc.returncode != 0:
        raise EnvctlError(
            f"{repo} is not a git repository", file=str(repo), rule="not-a-repo",
            fix="give the server's bare repository (e.g. /srv/git/catalog.git)",
        )
    hooks = Path(proc.stdout.decode().strip())
    if not hooks.is_absolute():
        hooks = repo / hooks
    hooks.mkdir(parents=True, exist_ok=True)
    path = hooks / HOOK_NAME
    if path.exists() and not force and MARKER not in path.read_text(errors="replace"):
        raise EnvctlError(
            f"{path} exists and was not written by envctl", file=str(path), rule="hook-exists",
            fix="move it aside (or chain it from envctl's) and run again, or pass --force",
        )
    tmp = path.with_name(f".{HOOK_NAME}.envctl-tmp")
    tmp.write_text(hook_script(python or sys.executable), encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    sys.exit(main())
