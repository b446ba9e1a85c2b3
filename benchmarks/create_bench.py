"""``envctl create`` with a warm package cache against a bare ``rattler.install`` of the lock.

Run: ``.venv/bin/python benchmarks/create_bench.py [--repeat 7]``

Both sides install the same conda-lock v1 file (the test channel's python, requests
and its dependencies, tinynum, tinycli, libalpha: ~12 packages, link scripts on) into a
new prefix, in this process, with imports and caches warm, alternately; medians of
``--repeat`` runs. envctl's side is the whole API path: read the catalog, resolve the
alias, re-hash every cached package file, read the records from the archives, install
into a temp dir, record the ids, rename into place. The bare side takes the records
rattler reads from the lock and installs them (same rattler cache). Prints the ratio
(goal <= 2x). Nothing here uses the network.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ENV = """\
tags:
  v1:
    platforms: [linux-64]
    dependencies: [python=3.11, tinynum, requests, tinycli, libalpha]
"""


def setup(work: Path) -> Path:
    from envctl.resolve.api import resolve_tag
    from envctl.testing.channel import build_channel, channel_url

    channel = build_channel(work / "channel")
    root = work / "catalog"
    (root / "envs/bench").mkdir(parents=True)
    (root / "catalog.yaml").write_text(
        f'channels:\n  local: "{channel_url(channel)}"\nplatforms: [linux-64]\n'
    )
    (root / "envs/bench/env.yaml").write_text(ENV)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@envctl.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@envctl.invalid"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)
    resolve_tag(root, "bench/env:v1", resolved_at=datetime.now(UTC), resolved_by="bench",
                exclude_newer=datetime(2026, 1, 1, tzinfo=UTC))
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envctl-create-bench-") as tmp:
        work = Path(tmp)
        os.environ["ENVCTL_HOME"] = str(work / "home")
        os.environ.setdefault("ENVCTL_HOST_PYTHON", sys.executable)
        root = setup(work)

        from rattler import LockFile, install

        from envctl import api
        from envctl.materialize import rattler_cache
        from envctl.resolve.conda import run_rattler

        lock_path = root / "locks/bench/env/v1.conda-lock.yml"
        lock_env = LockFile.from_path(lock_path).default_environment()
        assert lock_env is not None
        records = lock_env.conda_repodata_records_for_platform(lock_env.platforms()[0])
        counter = iter(range(1_000_000))

        def envctl_create(*, warm: bool = True) -> None:
            ref = api.resolve_ref("bench/env:v1", catalog=root)
            result = api.install(ref, prefix=work / f"envctl-{next(counter)}")
            assert not warm or result.downloaded == 0, result.sources  # all from the cache

        def bare_install() -> None:
            run_rattler(install(records, work / f"bare-{next(counter)}",
                                cache_dir=rattler_cache(), execute_link_scripts=True,
                                show_progress=False))

        envctl_create(warm=False)  # fills the package cache
        times = timed_pair(envctl_create, bare_install, args.repeat)
    ours, bare = times
    print(f"envctl create (warm cache): {ours * 1000:7.1f} ms  (median of {args.repeat})")
    print(f"bare rattler.install:       {bare * 1000:7.1f} ms")
    ratio = ours / bare
    print(f"ratio: {ratio:.2f}x (goal <= 2x) {'OK' if ratio <= 2 else 'OVER'}")
    return 0


def timed_pair(first: Callable[[], None], second: Callable[[], None],
               repeat: int) -> tuple[float, float]:
    """Median times of two functions run alternately (same machine load for both)."""
    first(), second()  # warm: imports, caches, first-use setup
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for index, fn in enumerate((first, second)):
            start = time.perf_counter()
            fn()
            times[index].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


if __name__ == "__main__":
    raise SystemExit(main())
