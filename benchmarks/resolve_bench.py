"""Resolve benchmarks: envctl's overhead over a bare rattler solve, and a 500k-record solve.

Run: ``.venv/bin/python benchmarks/resolve_bench.py [--records 500000] [--repeat 5]``

1. ``envctl resolve`` of a ~20-package, 2-platform environment (a real git catalog,
   the full API path: exclude_newer from git, requests and req_id, rattler solve,
   conda-lock v1 + meta written) against a bare ``rattler.solve`` of the same request
   (same channel, specs, platforms, virtual packages, exclude_newer), both in this
   process with imports warm, median of ``--repeat`` runs. Prints the ratio (goal <= 2x).
   Also the cold ``envctl resolve`` process (imports included), for reference.
2. A solve against generated repodata of about ``--records`` records (goal < 2 s),
   in a fresh process that reports its wall time and peak RSS.

Channels are generated ``repodata.json`` files only: a solve never opens a package.
Nothing here uses the network.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PLATFORMS = ("linux-64", "osx-arm64")
EXCLUDE_NEWER = "2024-06-01T00:00:00Z"
VIRTUAL = {
    "linux-64": {"__glibc": "2.17", "__unix": "0", "__archspec": "1=x86_64", "__linux": "5.10"},
    "osx-arm64": {"__osx": "11.0", "__unix": "0", "__archspec": "1=arm64"},
}


# -- a generated channel ------------------------------------------------------------------


def _record(name: str, version: str, subdir: str, depends: list[str], stamp: int) -> dict:
    filename = f"{name}-{version}-h0_0.tar.bz2"
    digest = hashlib.sha256(f"{subdir}/{filename}".encode()).hexdigest()
    return {
        "build": "h0_0",
        "build_number": 0,
        "depends": depends,
        "license": "MIT",
        "md5": digest[:32],
        "name": name,
        "sha256": digest,
        "size": 1000,
        "subdir": subdir,
        "timestamp": stamp,
        "version": version,
    }


def write_channel(
    dest: Path, names: int, versions: int, *, seed: int = 7, platforms: tuple[str, ...] = PLATFORMS
) -> int:
    """``names`` packages x ``versions`` versions per arch subdir; noarch gets a tenth.

    Each package depends on up to two of the 40 names before it (a DAG, so every
    request is solvable), with lower bounds that make older versions matter.
    Returns the number of records written.
    """
    rng = random.Random(seed)
    deps_of = {}
    for i in range(names):
        window = list(range(max(0, i - 40), i))
        picks = rng.sample(window, k=min(len(window), rng.choice((0, 1, 1, 2))))
        deps_of[i] = picks
    base = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    total = 0
    for subdir in (*platforms, "noarch"):
        count = names if subdir != "noarch" else max(1, names // 10)
        packages = {}
        for i in range(count):
            name = f"pkg{i:06d}" if subdir != "noarch" else f"nopkg{i:06d}"
            for v in range(versions):
                version = f"{v // 10}.{v % 10}.0"
                depends = [f"pkg{j:06d} >={(v // 2) // 10}.{(v // 2) % 10}" for j in deps_of[i]]
                if subdir == "noarch":
                    depends = []
                stamp = base + (i * versions + v) * 60_000
                record = _record(name, version, subdir, depends, stamp)
                packages[f"{name}-{version}-h0_0.tar.bz2"] = record
        (dest / subdir).mkdir(parents=True, exist_ok=True)
        repodata = {"info": {"subdir": subdir}, "packages": packages, "packages.conda": {}}
        with open(dest / subdir / "repodata.json", "w") as handle:
            json.dump(repodata, handle, separators=(",", ":"))
        total += len(packages)
    return total


def request_names(names: int, want: int = 20) -> list[str]:
    """Top-level names whose closure is about ``want`` packages (picked from the top)."""
    rng = random.Random(7)
    deps_of = {}
    for i in range(names):
        window = list(range(max(0, i - 40), i))
        deps_of[i] = rng.sample(window, k=min(len(window), rng.choice((0, 1, 1, 2))))
    chosen: list[int] = []
    closure: set[int] = set()
    for top in range(names - 1, 0, -7):
        stack, seen = [top], set()
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(deps_of[node])
        if len(closure | seen) > want:
            continue
        chosen.append(top)
        closure |= seen
        if len(closure) >= want - 1:
            break
    return [f"pkg{i:06d}" for i in chosen]


# -- 1. envctl resolve vs bare rattler ----------------------------------------------------


def bare_solve(channel_url: str, specs: list[str]) -> int:
    from rattler import BuildString, Channel, Gateway, GenericVirtualPackage, PackageName, Version
    from rattler import solve as rattler_solve

    gateway = Gateway()
    cutoff = datetime.fromisoformat(EXCLUDE_NEWER.replace("Z", "+00:00"))
    count = 0
    for platform in PLATFORMS:
        virtual = []
        for name, text in VIRTUAL[platform].items():
            version, _, build = text.partition("=")
            virtual.append(
                GenericVirtualPackage(
                    PackageName(name), Version(version), BuildString(build or "0")
                )
            )
        records = asyncio.run(
            rattler_solve(
                sources=[Channel(channel_url)],
                specs=specs,
                gateway=gateway,
                platforms=[platform, "noarch"],
                virtual_packages=virtual,
                exclude_newer=cutoff,
            )
        )
        count += len(records)
    return count


def make_catalog(root: Path, channel_url: str, specs: list[str]) -> None:
    (root / "envs/bench").mkdir(parents=True)
    (root / "locks").mkdir()
    (root / "catalog.yaml").write_text(
        f"channels:\n  gen: {json.dumps(channel_url)}\nplatforms: [{', '.join(PLATFORMS)}]\n"
    )
    deps = ", ".join(specs)
    (root / "envs/bench/env.yaml").write_text(f"tags:\n  v1:\n    dependencies: [{deps}]\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": EXCLUDE_NEWER,
        "GIT_COMMITTER_DATE": EXCLUDE_NEWER,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@envctl.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@envctl.invalid",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)


def envctl_resolve(root: Path) -> int:
    from envctl.resolve.api import resolve_tag

    for path in (root / "locks").rglob("*.*"):
        path.unlink()
    result = resolve_tag(root, "bench/env:v1", resolved_at=datetime.now(UTC), resolved_by="bench")
    assert result.exclude_newer == EXCLUDE_NEWER, result
    return sum(p.conda for p in result.platforms)


def timed_pair(first, second, repeat: int) -> tuple[float, float, object, object]:  # type: ignore[no-untyped-def]
    """Median times of two functions run alternately (same machine load for both)."""
    first(), second()  # warm: imports, page cache, first-use setup
    times: tuple[list[float], list[float]] = ([], [])
    values: list[object] = [None, None]
    for _ in range(repeat):
        for index, fn in enumerate((first, second)):
            start = time.perf_counter()
            values[index] = fn()
            times[index].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1]), values[0], values[1]


def overhead_benchmark(work: Path, repeat: int) -> None:
    channel = work / "channel-small"
    records = write_channel(channel, names=2000, versions=5)
    specs = request_names(2000)
    url = channel.resolve().as_uri()
    root = work / "catalog"
    make_catalog(root, url, specs)

    bare_time, env_time, bare_count, env_count = timed_pair(
        lambda: bare_solve(url, specs), lambda: envctl_resolve(root), repeat
    )
    assert bare_count == env_count, (bare_count, env_count)
    print(
        f"[1] {len(specs)} requested -> {env_count // 2} packages per platform x 2 platforms, "
        f"channel of {records:,} records"
    )
    print(
        f"    bare rattler solve (2 platforms):  {bare_time * 1000:8.1f} ms  (median of {repeat})"
    )
    print(f"    envctl resolve (solve+lock+meta):  {env_time * 1000:8.1f} ms  (median of {repeat})")
    print(f"    ratio envctl / rattler:            {env_time / bare_time:8.2f} x   (goal <= 2x)")

    envctl_bin = Path(sys.executable).with_name("envctl")
    for path in (root / "locks").rglob("*.*"):
        path.unlink()
    start = time.perf_counter()
    proc = subprocess.run(
        [str(envctl_bin), "--catalog", str(root), "resolve", "bench/env:v1"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"envctl resolve failed:\n{proc.stdout}{proc.stderr}")
    cold = time.perf_counter() - start
    code = "import sys, benchmarks_resolve as b; b.bare_solve(sys.argv[1], sys.argv[2:])"
    start = time.perf_counter()
    # check=False: without envctl's exit settling, py-rattler 0.28 sometimes aborts at exit
    # (see envctl.resolve.conda.SETTLE); the time to that point is what is measured.
    subprocess.run(
        [sys.executable, "-c", code, url, *specs],
        check=False,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(work)},
    )
    cold_bare = time.perf_counter() - start
    print(
        f"    cold processes: envctl resolve {cold:.2f} s (imports conda-lock, pydantic, typer; "
        f"exit settling), bare rattler script {cold_bare:.2f} s"
    )


# -- 2. a solve against ~500k records -----------------------------------------------------

LARGE_CHILD = """
import asyncio, resource, sys, time
from datetime import datetime
from pathlib import Path
from envctl.resolve.channels import ChannelRef
from envctl.resolve.conda import CondaRequest, solve_conda
url, specs = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
packages = solve_conda(CondaRequest(
    platform="linux-64", specs=tuple(specs),
    channels=(ChannelRef("gen", url, url),),
    virtual_packages={"__glibc": "2.17", "__unix": "0"},
    exclude_newer=datetime.fromisoformat("2030-01-01T00:00:00+00:00"),
))
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.3f} {peak:.0f} {len(packages)}")
"""


BARE_CHILD = """
import asyncio, resource, sys, time
from rattler import Channel, Gateway, GenericVirtualPackage, PackageName, Version, BuildString
from rattler import solve
url, specs = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
virtual = [GenericVirtualPackage(PackageName(n), Version(v), BuildString("0"))
           for n, v in (("__glibc", "2.17"), ("__unix", "0"))]
records = asyncio.run(solve([Channel(url)], specs, gateway=Gateway(),
                            platforms=["linux-64", "noarch"], virtual_packages=virtual))
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.3f} {peak:.0f} {len(records)}", flush=True)
time.sleep(0.25)  # py-rattler 0.28 can abort if the interpreter exits right after a call
"""


def large_benchmark(work: Path, records: int) -> None:
    versions = 30
    names = max(1, round(records / versions / 1.1))  # linux-64 plus a tenth in noarch
    channel = work / "channel-large"
    start = time.perf_counter()
    total = write_channel(channel, names=names, versions=versions, platforms=("linux-64",))
    made = time.perf_counter() - start
    size = sum(p.stat().st_size for p in channel.rglob("repodata.json")) / 1e6
    specs = request_names(names, want=30)
    url = channel.resolve().as_uri()
    figures = {}
    for label, child in (("envctl conda solve", LARGE_CHILD), ("bare rattler solve", BARE_CHILD)):
        out = subprocess.run(
            [sys.executable, "-c", child, url, *specs],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        figures[label] = (float(out[0]), float(out[1]), int(out[2]))
    count = figures["envctl conda solve"][2]
    print(
        f"[2] {total:,} records in linux-64 + noarch ({size:.0f} MB of repodata.json, generated "
        f"in {made:.1f} s); solve of {len(specs)} specs -> {count} packages"
    )
    for label, (elapsed, peak, _) in figures.items():
        print(f"    {label}: {elapsed:.2f} s (goal < 2 s), peak RSS {peak:.0f} MB (whole process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envctl-bench-") as tmp:
        work = Path(tmp)
        # The cold bare-rattler process imports this file's bare_solve under a plain name.
        (work / "benchmarks_resolve.py").write_text(Path(__file__).read_text())
        os.environ.setdefault("HOME", str(work))
        overhead_benchmark(work, args.repeat)
        large_benchmark(work, args.records)


if __name__ == "__main__":
    main()
