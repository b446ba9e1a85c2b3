"""Every scale figure of envctl in one run, printed as one table with the goals.

    .venv/bin/python benchmarks/run.py            # catalogs of 10, 1,000 and 10,000 envs
    .venv/bin/python benchmarks/run.py --quick    # 10 and 1,000 only (a minute or two)
    .venv/bin/python benchmarks/run.py --workdir /tmp/envctl-bench   # keep the catalogs

For each size, ``gen_catalog.py`` builds a realistic catalog in a git repository (reused
from ``--workdir`` when an earlier run made the same one). Then, each as a fresh process,
the way users and servers run them:

- ``envctl lint``, ``envctl list --json``, ``envctl search --package numpy``,
  ``envctl show NAME`` and ``envctl show REQ_ID:FULL_ID`` in the catalog's work tree;
- the pre-receive hook (installed in a bare clone, wrapped to record its wall time and
  peak memory) for a push adding one tag, for CI's signed lock of it, and for one push
  of 100 commits that each add a tag to another environment;
- ``envctl --help`` and ``python -X importtime`` of ``envctl show`` (the slowest imports).

Times are medians of ``--repeat`` runs after one uncounted warm-up run (lint and list at
10,000: of ``--repeat-slow`` runs; search: one run, stopped after
``--search-timeout``). Peak memory is the largest resident set of the process tree
(``wait4``'s rusage: the command and the processes it waited for, e.g. lint's workers or
the hook's git). The machine's load average is printed: other work on a 2-core machine
moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gen_catalog import GENERATOR_VERSION, Generated, generate, git, load_info, quiet_git_env
from hook_bench import CI, commit_files, last_hook, timed_hook

from envctl import yamlio
from envctl.meta import load_meta
from envctl.testing.handlocks import lock_files

ENVCTL = str(Path(sys.executable).with_name("envctl"))
GOAL_LINT_S = 5.0
GOAL_MEMORY_MB = 300.0
GOAL_HOOK_S = 0.5
GOAL_HOOK_RATIO = 1.2
GOAL_HOOK_PLUS_S = 0.05
GOAL_START_S = 0.3
PUSH_COMMITS = 100


@dataclass
class Run:
    seconds: float
    peak_mb: float
    returncode: int
    stdout: bytes
    stderr: bytes


# Commands are started by this small helper process, not by the benchmark itself: a child's
# peak RSS (ru_maxrss) keeps the high-water mark of the process it was forked from, across
# exec, so a command forked from a benchmark grown to 200 MB would report 200 MB.
_SPAWNER_CODE = r"""
import json, os, subprocess, sys, threading, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"], stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(job["timeout"], proc.kill) if job["timeout"] else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if timer:
            timer.cancel()
    print(json.dumps({"seconds": seconds, "maxrss": usage.ru_maxrss,
                      "rc": os.waitstatus_to_exitcode(status)}), flush=True)
"""
_spawner: subprocess.Popen[str] | None = None


def start_spawner() -> None:
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen([sys.executable, "-c", _SPAWNER_CODE], text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def measure(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float | None = None) -> Run:
    """Run ``cmd`` once: wall time, and the peak RSS of its process tree (wait4's rusage: the
    command and the processes it waited for). Past ``timeout`` seconds it is killed and the
    run reports returncode -9."""
    start_spawner()
    assert _spawner is not None and _spawner.stdin and _spawner.stdout
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp, "out"), Path(tmp, "err")
        job = {"cmd": list(cmd), "cwd": str(cwd) if cwd else None, "env": env,
               "timeout": timeout, "out": str(out), "err": str(err)}
        _spawner.stdin.write(json.dumps(job) + "\n")
        _spawner.stdin.flush()
        answer = json.loads(_spawner.stdout.readline())
        return Run(answer["seconds"], answer["maxrss"] / 1024, answer["rc"], out.read_bytes(),
                   err.read_bytes())


@dataclass
class Figure:
    what: str
    size: int | None
    seconds: float | None = None
    peak_mb: float | None = None
    note: str = ""
    goal: str = ""
    ok: bool | None = None


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        what = f"{figure.what} @ {figure.size:,}" if figure.size is not None else figure.what
        shown = f"{figure.seconds * 1000:,.0f} ms" if figure.seconds is not None else "n/a"
        print(f"  {what}: {shown} {figure.note}", flush=True)
        return figure


def median_run(runs: int, once: Callable[[], Run], *, warmup: bool = False
               ) -> tuple[float, float, Run]:
    """Median seconds and the highest peak over ``runs`` runs; the last run for its output.

    ``warmup``: one run first, not counted (the first run after a catalog is made pays for
    the OS reading envctl's modules and the catalog's files from disk).
    """
    if warmup:
        once()
    results = [once() for _ in range(runs)]
    return (statistics.median(r.seconds for r in results),
            max(r.peak_mb for r in results), results[-1])


# -- the catalog ----------------------------------------------------------------------------


def catalog_for(workdir: Path, size: int, pub: str) -> Generated:
    """Reuse an earlier run's catalog when it was made the same way; else generate it."""
    out = workdir / f"catalog-{size}"
    info = load_info(out / ".git")
    wanted = {"envs": size, "seed": 0, "commits": 300, "signers": [[CI, pub]],
              "bare": False, "work_tree": True, "version": GENERATOR_VERSION}
    if info is not None and json.loads(json.dumps(info.params)) == wanted:
        print(f"  reusing {out} (generated in {info.seconds:.1f} s)", flush=True)
        return info
    return generate(out, size, signers=[(CI, pub)])


def env_paths(client: Path, count: int) -> list[str]:
    paths = git(client, "ls-tree", "-r", "--name-only", "main", "--", "envs/").split()
    step = max(1, len(paths) // count)
    return [paths[(i * step) % len(paths)] for i in range(count)]


# -- the figures ----------------------------------------------------------------------------


def bench_cli(report: Report, info: Generated, env: dict[str, str], repeat: int,
              slow_repeat: int, search_timeout: float) -> None:
    size, tree = info.envs, Path(info.path)
    slow = slow_repeat if size >= 10_000 else repeat

    seconds, peak, run = median_run(slow, lambda: measure([ENVCTL, "lint"], cwd=tree, env=env),
                                    warmup=True)
    summary = run.stdout.decode(errors="replace").strip().splitlines()[-1:]
    report.add(Figure("envctl lint", size, seconds, peak,
                      note=f"({summary[0] if summary else 'no output'}; exit {run.returncode})",
                      goal=f"< {GOAL_LINT_S:g} s, < {GOAL_MEMORY_MB:g} MB at 10,000",
                      ok=(seconds < GOAL_LINT_S and peak < GOAL_MEMORY_MB)
                      if size >= 10_000 else None))
    if run.returncode != 0:
        report.notes.append(f"lint found problems in the generated catalog of {size:,}: "
                            + run.stdout.decode(errors="replace")[:500])

    seconds, peak, run = median_run(
        slow, lambda: measure([ENVCTL, "list", "--json"], cwd=tree, env=env),
        warmup=True)
    listed = len(json.loads(run.stdout)) if run.returncode == 0 else "error"
    report.add(Figure("envctl list --json", size, seconds, peak, note=f"({listed} envs)"))

    probe = measure([ENVCTL, "search", "--help"], cwd=tree, env=env)
    if probe.returncode == 0:
        cmd = [ENVCTL, "search", "--package", info.package, "--json"]
        run = measure(cmd, cwd=tree, env=env, timeout=search_timeout)
        if run.returncode == -9:
            report.add(Figure(f"envctl search --package {info.package}", size, None,
                              run.peak_mb, note=f"(stopped after {search_timeout:g} s)"))
        else:
            found = len(json.loads(run.stdout)) if run.returncode == 0 else "error"
            report.add(Figure(f"envctl search --package {info.package}", size, run.seconds,
                              run.peak_mb, note=f"({found} envs; exit {run.returncode})"))
    else:
        report.add(Figure(f"envctl search --package {info.package}", size,
                          note="(n/a: 'envctl search' is not registered yet)"))

    seconds, peak, run = median_run(
        max(repeat, 5), lambda: measure([ENVCTL, "show", info.sample_alias], cwd=tree, env=env),
        warmup=True)
    report.add(Figure("envctl show NAME (cold start)", size, seconds, peak,
                      note=f"({info.sample_alias}; exit {run.returncode})",
                      goal=f"< {GOAL_START_S * 1000:g} ms", ok=seconds < GOAL_START_S))

    # By id, as Metaflow users and flows name environments: a scan of every meta.
    name, _, tag = info.sample_alias.rpartition(":")
    meta = load_meta((tree / "locks" / name / f"{tag}.meta.yaml").read_bytes(), file="meta")
    env_id = next(iter(meta.env_ids().values()))
    seconds, peak, run = median_run(
        slow, lambda: measure([ENVCTL, "show", env_id], cwd=tree, env=env),
        warmup=True)
    report.add(Figure("envctl show REQ_ID:FULL_ID", size, seconds, peak,
                      note=f"(exit {run.returncode})"))


def bench_hook(report: Report, info: Generated, root: Path, env: dict[str, str], key: Path,
               repeat: int) -> dict[str, float]:
    """One-tag pushes, CI lock pushes and one push of 100 commits through the real hook."""
    size = info.envs
    server = root / f"server-{size}.git"
    client = root / f"client-{size}.git"
    for path in (server, client):
        shutil.rmtree(path, ignore_errors=True)
    git(root, "clone", "--quiet", "--bare", info.git_dir, str(server), env=env)
    log = root / f"hook-{size}.log"
    log.unlink(missing_ok=True)
    timed_hook(server, log)
    git(root, "clone", "--quiet", "--bare", str(server), str(client), env=env)
    tip = git(client, "rev-parse", "main").strip()
    path = info.sample_env
    name = path[len("envs/"): -len(".yaml")]
    tags, locks, peaks = [], [], []
    for k in range(-1, repeat):  # k = -1: a warm-up push, not counted
        tag = f"v{100 + k + 1}"  # past every generated tag
        data = yamlio.load(git(client, "cat-file", "blob", f"{tip}:{path}"))
        data["tags"][tag] = {"dependencies": ["python=3.12", f"pkg{k}"]}
        text = yamlio.dump(data)
        tip = commit_files(client, tip, {path: text}, f"Add {name}:{tag}")
        git(client, "push", "--quiet", str(server), f"{tip}:refs/heads/main", env=env)
        seconds, peak, rc = last_hook(log)
        assert rc == 0, f"the hook refused a good one-tag push ({size:,} envs)"
        if k >= 0:
            tags.append(seconds)
            peaks.append(peak)
        files = lock_files({"catalog.yaml": info.config, path: text}, f"{name}:{tag}")
        tip = commit_files(client, tip, files, f"Lock {name}:{tag}", key=key)
        git(client, "push", "--quiet", str(server), f"{tip}:refs/heads/main", env=env)
        seconds, peak, rc = last_hook(log)
        assert rc == 0, f"the hook refused CI's lock push ({size:,} envs)"
        if k >= 0:
            locks.append(seconds)
            peaks.append(peak)
    one_tag = statistics.median(tags)
    report.add(Figure("hook: push adding one tag", size, one_tag, max(peaks[::2])))
    report.add(Figure("hook: CI's signed lock push", size, statistics.median(locks),
                      max(peaks[1::2])))

    # One push of 100 commits, each adding a tag to another environment.
    stream = []
    for i, env_path in enumerate(env_paths(client, PUSH_COMMITS)):
        data = yamlio.load(git(client, "cat-file", "blob", f"{tip}:{env_path}"))
        tag = f"v{200 + i}"
        data["tags"][tag] = {"dependencies": ["python=3.12", f"batch{i}"]}
        body = yamlio.dump(data).encode()
        message = f"Add {tag}".encode()
        stream.append(
            b"commit refs/bench/batch\ncommitter bench <bench@example.org> %d +0000\n"
            b"data %d\n%s\n%sM 100644 inline %s\ndata %d\n%s\n"
            % (1_800_000_000 + i, len(message), message,
               b"from %s\n" % tip.encode() if i == 0 else b"", env_path.encode(),
               len(body), body)
        )
    git(client, "fast-import", "--quiet", "--done", "--force",
        input=b"".join(stream) + b"done\n", env=env)
    batch = git(client, "rev-parse", "refs/bench/batch").strip()
    proc = subprocess.run(["git", "push", "--quiet", str(server), f"{batch}:refs/heads/main"],
                          cwd=client, env=env, capture_output=True, check=False)
    seconds, peak, rc = last_hook(log)
    report.add(Figure(f"hook: one push of {PUSH_COMMITS} commits", size, seconds, peak,
                      note="(accepted)" if rc == 0 and proc.returncode == 0 else
                      f"(REFUSED: {proc.stderr.decode(errors='replace').strip()[:300]})"))
    return {"one_tag": one_tag, "peak": max(peaks)}


def bench_start(report: Report, env: dict[str, str], repeat: int, tree: Path,
                alias: str) -> None:
    seconds, peak, _ = median_run(max(repeat, 7), lambda: measure([ENVCTL, "--help"], env=env),
                                  warmup=True)
    report.add(Figure("envctl --help (cold start)", None, seconds, peak,
                      goal=f"< {GOAL_START_S * 1000:g} ms", ok=seconds < GOAL_START_S))
    run = measure([sys.executable, "-X", "importtime", "-m", "envctl.cli.main", "show", alias],
                  cwd=tree, env=env)
    rows = []
    for line in run.stderr.decode(errors="replace").splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)))
    total = sum(r[0] for r in rows) / 1000
    top_self = sorted(rows, reverse=True)[:8]
    top_level = sorted((r for r in rows if r[2] == 1), key=lambda r: -r[1])[:8]
    report.notes.append(
        f"python -X importtime, envctl show: {total:.0f} ms of imports; slowest by own time: "
        + ", ".join(f"{r[3]} {r[0] / 1000:.1f}" for r in top_self)
        + " ms; top-level by cumulative time: "
        + ", ".join(f"{r[3]} {r[1] / 1000:.1f}" for r in top_level) + " ms"
    )


# -- the table ------------------------------------------------------------------------------


def print_table(report: Report, sizes: list[int], hooks: dict[int, dict[str, float]],
                gens: dict[int, Generated], load: tuple[tuple[float, ...], tuple[float, ...]]
                ) -> bool:
    print()
    print(f"envctl benchmarks (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {load[0][0]:.2f} at start, {load[1][0]:.2f} at end)")
    print()
    print("catalogs:")
    for size in sizes:
        g = gens[size]
        print(f"  {g.envs:>6,} envs: {g.tags:,} tags, {g.locks:,} locks ({g.distinct_locks:,} "
              f"distinct blobs), {g.commits:,} commits, {g.repo_bytes / 1e6:,.0f} MB of git "
              f"objects, generated in {g.seconds:.1f} s")
    print()
    header = f"{'figure':<44} {'envs':>7} {'time':>10} {'peak RSS':>9}  {'goal':<28} ok"
    print(header)
    print("-" * len(header))
    for f in report.figures:
        size = f"{f.size:,}" if f.size is not None else "-"
        t = f"{f.seconds * 1000:,.0f} ms" if f.seconds is not None else "n/a"
        mem = f"{f.peak_mb:,.0f} MB" if f.peak_mb is not None else ""
        ok = "" if f.ok is None else ("yes" if f.ok else "NO")
        print(f"{f.what:<44} {size:>7} {t:>10} {mem:>9}  {f.goal:<28} {ok}")
    small, large = min(sizes), max(sizes)
    a, b = hooks[small]["one_tag"], hooks[large]["one_tag"]
    flat = (b / a <= GOAL_HOOK_RATIO or b - a <= GOAL_HOOK_PLUS_S) and b < GOAL_HOOK_S
    mem_ok = hooks[large]["peak"] < GOAL_MEMORY_MB
    print()
    print(f"hook, one-tag push: {large:,} / {small:,} envs = {b / a:.2f}x ({(b - a) * 1000:+.0f} "
          f"ms), {b * 1000:.0f} ms at {large:,}; goal <= {GOAL_HOOK_RATIO}x or <= "
          f"+{GOAL_HOOK_PLUS_S * 1000:.0f} ms, < {GOAL_HOOK_S * 1000:.0f} ms: "
          + ("met" if flat else "NOT met"))
    print(f"hook peak memory at {large:,}: {hooks[large]['peak']:.0f} MB; goal < "
          f"{GOAL_MEMORY_MB:g} MB: " + ("met" if mem_ok else "NOT met"))
    lint = [f for f in report.figures if f.what == "envctl lint"]
    if len(lint) >= 2 and lint[0].seconds:
        print(f"lint: {lint[-1].size:,} / {lint[0].size:,} envs = "
              f"{(lint[-1].seconds or 0) / lint[0].seconds:.1f}x")
    for note in report.notes:
        print()
        print(note)
    goals = [f.ok for f in report.figures if f.ok is not None] + [flat, mem_ok]
    return all(goals)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 10 and 1,000 only")
    parser.add_argument("--sizes", type=int, nargs="+", help="override the sizes")
    parser.add_argument("--repeat", type=int, default=5, help="runs per fast figure")
    parser.add_argument("--repeat-slow", type=int, default=3,
                        help="runs of lint, list and show by id at 10,000 environments")
    parser.add_argument("--workdir", type=Path, help="keep catalogs here and reuse them")
    parser.add_argument("--search-timeout", type=float, default=120,
                        help="stop envctl search after this many seconds (run once per size)")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes or ([10, 1_000] if args.quick else [10, 1_000, 10_000]))
    start_spawner()  # while this process is small
    load_start = os.getloadavg()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="envctl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        home = work / "home"
        home.mkdir(exist_ok=True)
        env = {**os.environ, **quiet_git_env(home)}
        env.pop("ENVCTL_CATALOG", None)
        os.environ.update(quiet_git_env(home))
        key = work / "ci"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f",
                            str(key)], check=True)
        pub = key.with_suffix(".pub").read_text().strip()
        report = Report()
        gens: dict[int, Generated] = {}
        hooks: dict[int, dict[str, float]] = {}
        for size in sizes:
            print(f"{size:,} environments", flush=True)
            gens[size] = catalog_for(work, size, pub)
            bench_cli(report, gens[size], env, args.repeat, args.repeat_slow,
                      args.search_timeout)
            hooks[size] = bench_hook(report, gens[size], work, env, key, args.repeat)
        largest = gens[max(sizes)]
        bench_start(report, env, args.repeat, Path(largest.path), largest.sample_alias)
        ok = print_table(report, sizes, hooks, gens, (load_start, os.getloadavg()))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
