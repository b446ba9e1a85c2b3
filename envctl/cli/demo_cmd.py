"""``envctl demo``: the main job in one command, on a throw-away catalog and a local channel.

It walks the whole loop a team lives in: a catalog repository on a git server
that runs envctl's pre-receive hook, a pull request's worth of edits, the push,
CI resolving and uploading and committing the locks back (signed), a refused
attempt to rewrite a frozen tag, and finally creating and running the
environment. Each step prints the command first, so the demo doubles as a tour
a user can replay by hand. Nothing reaches the network.

From a source checkout it also publishes the repository's example catalog
(``catalog/envs``: two teams, a cross-environment ``extends``, a GPU environment
solved with ``__cuda``, a ``pypi:`` part) in the same push, so the hook and CI's
resolve cover them too; their PyPI part comes from a simple index served on
127.0.0.1 for the length of the demo. An installed wheel has no example catalog:
the demo then says so and walks the loop with its own environment only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from envctl.cli import common

DEMO_ENV = "demo/science/base"
EXAMPLE_SHOWN = "ranking/train:v1"  # the example env 'show' displays: extends + a PyPI part
CI_PRINCIPAL = "ci@envctl.invalid"

EPILOG = """\
[bold]Examples[/bold]

  envctl demo                 # in a temporary directory, removed afterwards
  envctl demo ./envctl-demo   # keep the server, clones, store and channel to explore
"""


@dataclass(frozen=True)
class Examples:
    """The repository's example catalog, published by the demo with its own environment."""

    envs: Path  # catalog/envs of the source checkout
    mutable_tags: tuple[str, ...]  # the example catalog.yaml's, so its rolling tags stay rolling
    pypi_index: str  # a simple index on 127.0.0.1 for the 'pypi:' parts


def example_catalog() -> Path | None:
    """``catalog/`` of the source checkout envctl runs from, or None (e.g. a wheel install)."""
    import envctl
    from envctl.testing.pypi_index import DEFAULT_ROOT

    root = Path(envctl.__file__).resolve().parents[1] / "catalog"
    if not (root / "envs").is_dir() or not (root / "catalog.yaml").is_file():
        return None
    return root if DEFAULT_ROOT.is_dir() else None


@contextmanager
def serve_examples(root: Path) -> Iterator[Examples]:
    """The example catalog with a PyPI index for it, served while the demo runs."""
    from envctl import yamlio
    from envctl.config import CONFIG_FILE, parse_config
    from envctl.testing.pypi_index import serve_pypi_index

    config = parse_config(yamlio.load_path(root / CONFIG_FILE), file=str(root / CONFIG_FILE))
    with serve_pypi_index() as url:  # loopback only, a free port, stopped on exit
        yield Examples(root / "envs", tuple(config.mutable_tags), url)


@dataclass(frozen=True)
class Step:
    title: str
    argv: list[str]  # what the user would type (``envctl`` is implied unless argv[0] is a tool)
    expect_failure: bool = False
    action: Callable[[], None] | None = None  # for edits the narration shows as a shell command


def _identity_env() -> dict[str, str]:
    # A fresh machine may have no git identity; the demo must still commit.
    env = dict(os.environ)
    for var, value in (
        ("GIT_AUTHOR_NAME", "Dana Demo"),
        ("GIT_AUTHOR_EMAIL", "dana@envctl.invalid"),
        ("GIT_COMMITTER_NAME", "Dana Demo"),
        ("GIT_COMMITTER_EMAIL", "dana@envctl.invalid"),
    ):
        env.setdefault(var, value)
    return env


def demo_steps(directory: Path, channel: str, examples: Examples | None = None) -> list[Step]:
    """The tour, in order. Later steps build on earlier ones."""
    work = directory / "work"  # a team member's clone
    ci = directory / "ci"  # CI's clone
    server = directory / "server.git"
    key = directory / "ci_key"
    store = directory / "store"
    prefix = directory / "env"
    env_file = work / "envs" / f"{DEMO_ENV}.yaml"
    w = ["--catalog", str(work)]

    def edit_frozen_tag() -> None:
        text = env_file.read_text()
        env_file.write_text(text.replace("- tinynum\n", "- tinynum 1.1.*\n", 1))

    example_options: list[str] = []
    example_steps: list[Step] = []
    example_show: list[Step] = []
    message = f"Add {DEMO_ENV} v1, v2 and stable"
    if examples is not None:
        for pattern in examples.mutable_tags:
            example_options += ["--mutable-tag", pattern]
        example_options += ["--pypi-index", examples.pypi_index]
        source = examples.envs
        example_steps.append(
            Step("Add envctl's example environments: cross-env extends, __cuda, PyPI",
                 ["cp", "-R", f"{source}/.", str(work / "envs")],
                 action=lambda: shutil.copytree(source, work / "envs", dirs_exist_ok=True)))
        message += ", and envctl's example environments"
        if (examples.envs / f"{EXAMPLE_SHOWN.partition(':')[0]}.yaml").is_file():
            example_show.append(
                Step("An example env: the exact lock of the env it extends, plus PyPI",
                     [*w, "show", EXAMPLE_SHOWN]))

    return [
        Step("A key for CI to sign the commits that write locks",
             ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", CI_PRINCIPAL, "-f", str(key)]),
        Step("Create a catalog repository: one local channel, two platforms, CI's key",
             ["init", str(work), "--channel", f"local={channel}", "--platform", "linux-64",
              "--platform", "osx-arm64", "--store", str(store),
              "--signer", f"{CI_PRINCIPAL}={key}.pub", *example_options]),
        Step("A git server that enforces the catalog's rules in a pre-receive hook",
             ["git", "init", "-q", "--bare", "-b", "main", str(server)]),
        Step("Install the hook", ["hook", "install", str(server)]),
        Step("Publish the catalog",
             ["git", "-C", str(work), "remote", "add", "origin", str(server), "&&",
              "push", "-q", "-u", "origin", "main"]),
        Step("Add an environment with an immutable tag v1",
             [*w, "new", f"{DEMO_ENV}:v1", "--dep", "python=3.11", "--dep", "tinynum",
              "--description", "Small data-science base for the demo", "--owner", "science"]),
        Step("Point the mutable tag 'stable' at it",
             [*w, "tag", f"{DEMO_ENV}:stable", "--points-to", "v1"]),
        Step("Bump: v2 copies v1, adds a package and moves 'stable' in the same change",
             [*w, "bump", f"{DEMO_ENV}:v1", "--to", "v2", "--dep", "tinyframe",
              "--move", "stable"]),
        Step("Check the whole catalog", [*w, "lint"]),
        Step("Show what 'stable' means (ids are provisional until CI locks them)",
             [*w, "show", f"{DEMO_ENV}:stable"]),
        *example_steps,
        Step("Commit and push: the hook checks the push and accepts it",
             ["git", "-C", str(work), "add", "-A", "&&", "commit", "-q", "-m", message,
              "&&", "push", "-q"]),
        Step("CI: clone, resolve what changed, upload to the store, commit the locks back "
             "(signed)",
             ["git", "clone", "-q", str(server), str(ci)]),
        Step("", ["--catalog", str(ci), "ci", "run", "--store", str(store),
                  "--sign-key", str(key)]),
        Step("Pull CI's commit: v1 and v2 are frozen now, with req_id:full_id per platform",
             ["git", "-C", str(work), "pull", "-q"]),
        Step("", [*w, "show", f"{DEMO_ENV}:v2"]),
        *example_show,
        Step("Try to change the frozen v1 in place ...",
             ["sed", "-i", "s/- tinynum$/- tinynum 1.1.*/", str(env_file)],
             action=edit_frozen_tag),
        Step("... the server refuses the push and says what to do instead",
             ["git", "-C", str(work), "commit", "-q", "-am", "Change v1", "&&", "push", "-q"],
             expect_failure=True),
        Step("Drop that commit", ["git", "-C", str(work), "reset", "-q", "--hard",
                                  "origin/main"]),
        Step("Who moved 'stable', and when", [*w, "history", f"{DEMO_ENV}:stable"]),
        Step("Create the environment 'stable' points to, every package's sha256 verified",
             [*w, "create", f"{DEMO_ENV}:stable", "--prefix", str(prefix)]),
        Step("Run a command inside it",
             [*w, "run", "--prefix", str(prefix), "--", "python", "-c",
              "import tinyframe, tinynum; print('tinyframe', tinyframe.__version__, "
              "'tinynum', tinynum.__version__)"]),
    ]


TOOLS = ("git", "ssh-keygen", "sed", "cp")


def _commands(argv: list[str]) -> list[list[str]]:
    """``git -C DIR a && b`` is two calls sharing ``git -C DIR``; other tools are one call."""
    if argv[0] != "git" or "&&" not in argv:
        return [argv]
    head = argv[:3] if argv[1] == "-C" else argv[:1]
    rest = argv[len(head):]
    commands = []
    while rest:
        cut = rest.index("&&") if "&&" in rest else len(rest)
        commands.append([*head, *rest[:cut]])
        rest = rest[cut + 1 :]
    return commands


def _narrate(argv: list[str]) -> str:
    if argv[0] in TOOLS:
        return " && ".join(shlex.join(c) for c in _commands(argv))
    return "envctl " + shlex.join(argv)


def _run_tool(step: Step) -> int:
    if step.action is not None:
        step.action()
        return 0
    for command in _commands(step.argv):
        proc = subprocess.run(command, env=_identity_env(), capture_output=True, text=True)
        output = (proc.stdout + proc.stderr).strip()
        if output:
            common.console().print(output, markup=False, highlight=False)
        if proc.returncode != 0:
            return proc.returncode
    return 0


def _run_envctl(argv: list[str]) -> int:
    from envctl.cli.main import app

    # Standalone mode: every outcome, a typer.Exit(1) included, ends in SystemExit(code).
    try:
        app(argv, prog_name="envctl")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def run_demo(directory: Path, *, kept: bool = True) -> None:
    """Walk the tour in ``directory``; ``kept`` says whether it outlives the demo."""
    from envctl.testing.channel import build_channel, channel_url

    out = common.console()
    channel_dir = directory / "channel"
    out.rule("[bold]Build a local conda channel (offline, byte-identical every run)")
    build_channel(channel_dir, overwrite=True)
    out.print(f"channel at {channel_url(channel_dir)}\n")
    example_root = example_catalog()
    if example_root is None:
        out.print("[dim]No example catalog beside this envctl (not a source checkout): "
                  f"the demo publishes {DEMO_ENV} only.[/dim]\n")
    with serve_examples(example_root) if example_root else nullcontext() as examples:
        if examples is not None:
            out.print(f"example catalog {example_root}; its PyPI index at "
                      f"{examples.pypi_index}\n", highlight=False)
        _run_steps(demo_steps(directory, channel_url(channel_dir), examples), directory)
    out.rule("[bold green]Done")
    work = directory / "work"
    if kept:
        out.print(f"The catalog clone is {work}; try: envctl --catalog {work} show "
                  f"{DEMO_ENV}:v1 --json")
    else:
        out.print("The demo's temporary folder is removed; run `envctl demo DIR` to keep "
                  "the catalog, server and store.", markup=False)


def _run_steps(steps: list[Step], directory: Path) -> None:
    from envctl.errors import EnvctlError

    out = common.console()
    saved = {k: os.environ.get(k) for k in ("ENVCTL_HOME",)}
    # Keep the demo's environments and package cache inside its own folder.
    os.environ["ENVCTL_HOME"] = str(directory / "home")
    try:
        for step in steps:
            if step.title:
                out.rule(f"[bold]{step.title}")
            out.print(f"[dim]$ {_narrate(step.argv)}[/dim]", markup=True, highlight=False)
            code = _run_tool(step) if step.argv[0] in TOOLS else _run_envctl(step.argv)
            if step.expect_failure and code == 0:
                raise EnvctlError(f"demo step should have been refused: {_narrate(step.argv)}",
                                  rule="demo")
            if not step.expect_failure and code != 0:
                raise EnvctlError(f"demo step failed ({code}): {_narrate(step.argv)}",
                                  rule="demo", fix="run it by hand to see why")
            out.print()
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def demo(
    *,
    directory: Annotated[
        Path | None,
        typer.Argument(help="Where to build the demo (default: a temporary directory).",
                       show_default=False),
    ] = None,
) -> None:
    """Run the whole loop on a throw-away catalog and a local channel: no network needed.

    A git server with envctl's hook, a push, CI resolving and committing locks back
    (signed), a refused rewrite of a frozen tag, then create and run the environment.
    """
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="envctl-demo-") as tmp:
            run_demo(Path(tmp), kept=False)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        run_demo(directory.resolve())


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(demo)
