"""Time the pre-receive hook on catalogs of 10, 1,000 and 10,000 environments.

For each size: a bare server repository with the installed hook, holding a catalog of that
many environments made by ``gen_catalog.py`` (realistic tags, locks and a history of
hundreds of commits, through ``git fast-import``). Then, from a clone, a few pushes of one
commit each:

- ``tag``: a person adds a new tag to one environment (the common push);
- ``lock``: CI pushes the signed lock + meta of that tag (signature check, req_id
  recomputed, rattler imported).

The hook runs exactly as a server runs it; a wrapper around it records its wall time.
Prints the medians and the ratio largest/smallest catalog. Goal: ratio <= 1.2x (or
<= +50 ms) and < 0.5 s at 10,000 environments: the cost follows the push, not the catalog.

    .venv/bin/python benchmarks/hook_bench.py [--sizes 10 1000 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gen_catalog import generate, git, quiet_git_env

from envctl import yamlio
from envctl.hook import install_hook
from envctl.testing.handlocks import lock_files

CI = "ci@example.org"


def commit_files(
    client: Path, parent: str, files: dict[str, str], message: str, *, key: Path | None = None
) -> str:
    """A commit on ``parent`` that writes ``files`` (signed by ``key`` as CI, if given)."""
    entries = "".join(
        f"M 100644 inline {path}\ndata {len(text.encode())}\n{text}\n"
        for path, text in files.items()
    )
    stream = (
        f"commit refs/bench/tmp\ncommitter bench <bench@example.org> 1700000000 +0000\n"
        f"data {len(message)}\n{message}\nfrom {parent}\n{entries}done\n"
    )
    git(client, "fast-import", "--quiet", "--done", "--force", input=stream.encode())
    sha = git(client, "rev-parse", "refs/bench/tmp").strip()
    if key is None:
        return sha
    tree = git(client, "rev-parse", f"{sha}^{{tree}}").strip()
    return git(
        client,
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={key}",
        "commit-tree",
        "-S",
        tree,
        "-p",
        parent,
        "-m",
        message,
        env={"GIT_COMMITTER_EMAIL": CI, "GIT_COMMITTER_NAME": "ci"},
    ).strip()


def timed_hook(bare: Path, log: Path) -> None:
    """Install envctl's hook, then wrap it so each run's wall time and peak memory (the
    largest process of the hook's tree: Python or a git it runs) land in ``log``."""
    hook = install_hook(bare)
    real = hook.with_name("pre-receive.envctl")
    hook.rename(real)
    hook.write_text(
        f"#!{sys.executable}\n"
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        f"rc = subprocess.call([{str(real)!r}, *sys.argv[1:]])\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(f'{seconds} {peak} {rc}\\n')\n"
        "sys.exit(rc)\n"
    )
    hook.chmod(0o755)


def last_hook(log: Path) -> tuple[float, float, int]:
    """(seconds, peak MB, exit code) of the hook's last run."""
    seconds, peak_kb, rc = log.read_text().splitlines()[-1].split()
    return float(seconds), int(peak_kb) / 1024, int(rc)


def add_tag(client: Path, tip: str, path: str, tag: str, extra: str) -> tuple[str, str]:
    """A commit on ``tip`` adding ``tag`` to the environment file ``path``: (sha, new text)."""
    data = yamlio.load(git(client, "cat-file", "blob", f"{tip}:{path}"))
    data["tags"][tag] = {"dependencies": ["python=3.12", extra]}
    text = yamlio.dump(data)
    return commit_files(client, tip, {path: text}, f"Add {tag}"), text


def server_for(root: Path, size: int, pub: str) -> tuple[Path, Path, Path, dict]:
    """A generated catalog of ``size`` environments served by a bare repository with the
    timed hook, and a bare client clone: (server, client, hook log, generator info)."""
    info = generate(root / f"catalog-{size}", size, signers=[(CI, pub)], bare=True)
    log = root / f"hook-{size}.log"
    timed_hook(Path(info.path), log)
    client = root / f"client-{size}.git"
    git(root, "clone", "--quiet", "--bare", info.path, str(client))
    return Path(info.path), client, log, {"config": info.config, "env": info.sample_env,
                                          "seconds": info.seconds}


def bench_size(root: Path, size: int, repeat: int, key: Path, pub: str) -> dict[str, list]:
    bare, client, log, info = server_for(root, size, pub)
    results: dict[str, list] = {"tag": [], "lock": [], "push": [], "made": [info["seconds"]]}
    tip = git(client, "rev-parse", "main").strip()
    path = info["env"]
    name = path[len("envs/") : -len(".yaml")]
    for k in range(repeat):
        tag = f"v{100 + k}"  # past any generated tag
        tip, new_env = add_tag(client, tip, path, tag, f"pkg{k}")
        t0 = time.perf_counter()
        git(client, "push", "--quiet", str(bare), f"{tip}:refs/heads/main")
        results["push"].append(time.perf_counter() - t0)
        seconds, _peak, rc = last_hook(log)
        assert rc == 0, f"the hook refused a good push ({size} envs)"
        results["tag"].append(seconds)
        # CI locks the new tag: a signed commit with lock + meta.
        locks = lock_files({"catalog.yaml": info["config"], path: new_env}, f"{name}:{tag}")
        tip = commit_files(client, tip, locks, f"Lock {name}:{tag}", key=key)
        git(client, "push", "--quiet", str(bare), f"{tip}:refs/heads/main")
        seconds, _peak, rc = last_hook(log)
        assert rc == 0, f"the hook refused a good lock push ({size} envs)"
        results["lock"].append(seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envctl-hook-bench-") as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        os.environ.update(quiet_git_env(home))
        key = root / "ci"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f", str(key)], check=True
        )
        pub = (root / "ci.pub").read_text().strip()
        rows = {size: bench_size(root, size, args.repeat, key, pub) for size in args.sizes}

    med = {size: {k: statistics.median(v) for k, v in r.items()} for size, r in rows.items()}
    print(f"hook wall time, median of {args.repeat} (python {sys.version.split()[0]})")
    print(
        f"{'environments':>12} {'tag push':>10} {'lock push':>10} {'git push':>10} {'generate':>9}"
    )
    for size, m in med.items():
        print(
            f"{size:>12,} {m['tag'] * 1000:>8.0f}ms {m['lock'] * 1000:>8.0f}ms "
            f"{m['push'] * 1000:>8.0f}ms {m['made']:>8.2f}s"
        )
    small, large = min(med), max(med)
    for what in ("tag", "lock"):
        a, b = med[small][what], med[large][what]
        print(
            f"{what} push: {large:,} / {small:,} environments = {b / a:.2f}x "
            f"({(b - a) * 1000:+.0f} ms)"
        )
    ok = all(
        (med[large][w] / med[small][w] <= 1.2 or med[large][w] - med[small][w] <= 0.05)
        and med[large][w] < 0.5
        for w in ("tag", "lock")
    )
    print("goal (<= 1.2x or <= +50 ms, < 0.5 s at the largest):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
