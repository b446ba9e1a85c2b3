"""Time from push to locked: a person pushes a new tag, ``envctl ci run`` locks it.

A bare server with the installed pre-receive hook; a clone pushes a new tag of a
~20-package environment for two platforms (conda packages from the offline test
channel, PyPI ones from the loopback index); then ``envctl ci run`` — the real CLI, in
a subprocess, as a CI job runs it — in another clone: plan, resolve both platforms,
fetch and verify every package, upload to a local store, verify, commit back signed,
push through the hook, publish alias records. Timed from the start of the person's
push to the CI push having landed.

Prints each phase and the ratio to Metaflow's documented resolve time for one
environment (26-30 s, resolve alone). Goal: under 10 s. Nothing leaves 127.0.0.1.

    .venv/bin/python benchmarks/ci_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from envctl.hook import install_hook
from envctl.testing.channel import build_channel
from envctl.testing.pypi_index import serve_pypi_index

CI = "ci@example.org"
METAFLOW_RESOLVE_S = 26.0  # the low end of Metaflow's documented 26-30 s
ENVCTL = [sys.executable, "-m", "envctl"]

SPEC = {
    "v1": {
        "dependencies": [
            "python=3.11", "libalpha", "torchlet", "glibby", "tinycli", "tinydata",
            "requests", "six", "itsdangerous",
        ],
        "pypi": ["importlib-metadata"],
    }
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def sandbox(root: Path) -> None:
    """Git and envctl state under ``root``: no user config, only local transports."""
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = bench\n\temail = bench@example.org\n[init]\n\tdefaultBranch = main\n"
    )
    os.environ.update({
        "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_ALLOW_PROTOCOL": "file", "GIT_TERMINAL_PROMPT": "0",
        "ENVCTL_HOOK_DEADLINE": "60", "XDG_CACHE_HOME": str(home / ".cache"),
    })


def make_server(root: Path, channel: Path, index: str) -> tuple[Path, Path]:
    key = root / "ci-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f", str(key)],
                   check=True)
    bare = root / "server.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    install_hook(bare)
    seed = root / "seed"
    git(root, "clone", "-q", str(bare), str(seed))
    (seed / "catalog.yaml").write_text(
        "version: '1'\n"
        f"channels:\n  local: {json.dumps(channel.resolve().as_uri())}\n"
        "platforms: [linux-64, osx-arm64]\n"
        f"pypi_index: {json.dumps(index)}\n"
        "mutable_tags: [latest, stable]\n"
        f"allowed_signers:\n  - principal: {CI}\n"
        f"    key: {json.dumps((root / 'ci-key.pub').read_text().strip())}\n"
    )
    for sub in ("envs", "locks"):
        (seed / sub).mkdir()
        (seed / sub / ".gitkeep").write_text("")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "Create catalog")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare, key


def one_round(root: Path, bare: Path, key: Path, n: int) -> dict[str, float]:
    person, ci = root / f"person{n}", root / f"ci{n}"
    git(root, "clone", "-q", str(bare), str(person))
    git(root, "clone", "-q", str(bare), str(ci))
    env_file = person / "envs" / "bench" / f"env{n}.yaml"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(json.dumps({"tags": SPEC}) + "\n")
    git(person, "add", "-A")
    git(person, "commit", "-q", "-m", f"Add bench/env{n}:v1")

    start = time.perf_counter()
    git(person, "push", "-q", "origin", "HEAD:main")
    pushed = time.perf_counter()
    git(ci, "pull", "-q", "--ff-only")  # the CI runner's checkout of the pushed commit
    report_path = root / f"report{n}.json"
    proc = subprocess.run(
        [*ENVCTL, "--catalog", str(ci), "ci", "run", "--store", str(root / f"store{n}"),
         "--sign-key", str(key), "--report", str(report_path)],
        capture_output=True, text=True, env={**os.environ, "ENVCTL_HOME": str(root / f"h{n}")},
    )
    locked = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"envctl ci run failed:\n{proc.stdout}\n{proc.stderr}")
    report = json.loads(report_path.read_text())
    [tag] = report["tags"]
    packages = {p["platform"]: 0 for p in tag["platforms"]}
    lock = (ci / "locks" / "bench" / f"env{n}" / "v1.conda-lock.yml").read_text()
    for platform in packages:
        packages[platform] = lock.count(f"platform: {platform}\n")
    return {
        "push (hook)": pushed - start,
        "ci run": locked - pushed,
        "ci run, in process": report["seconds"],
        "push to locked": locked - start,
        "packages": sum(packages.values()) / len(packages),
        "files uploaded": tag["uploaded"] + tag["skipped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envctl-ci-bench-") as tmp:
        root = Path(tmp)
        sandbox(root)
        channel = build_channel(root / "channel")
        with serve_pypi_index() as index:
            bare, key = make_server(root, channel, index)
            rounds = [one_round(root, bare, key, n) for n in range(args.repeat)]
    first = rounds[0]
    print(f"environment: {first['packages']:.0f} packages per platform x 2 platforms, "
          f"{first['files uploaded']:.0f} package files uploaded; local store; "
          f"{args.repeat} round(s), each a new tag, an empty store and a cold package cache")
    for phase in ("push (hook)", "ci run", "ci run, in process", "push to locked"):
        values = [r[phase] for r in rounds]
        print(f"  {phase:<20} median {statistics.median(values):6.2f} s   "
              f"(min {min(values):.2f}, max {max(values):.2f})")
    total = statistics.median(r["push to locked"] for r in rounds)
    verdict = "meets" if total < 10 else "misses"
    print(f"push to locked: {total:.2f} s — {verdict} the 10 s goal; "
          f"{METAFLOW_RESOLVE_S / total:.1f}x faster than Metaflow's resolve alone "
          f"({METAFLOW_RESOLVE_S:.0f}-30 s)")


if __name__ == "__main__":
    main()
