"""Time the pre-receive hook on catalogs of 10, 1,000 and 10,000 environments.

For each size: a bare server repository with the installed hook, holding that many
environments (each with a frozen v1: lock and meta committed), written in one go with
``git fast-import``. Then, from a clone, a few pushes of one commit each:

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

from envctl import yamlio
from envctl.hook import install_hook
from envctl.testing.handlocks import config_yaml, env_yaml, lock_files

CI = "ci@example.org"
PER_NAMESPACE = 100  # envs/ns<k>/env<i>.yaml: a realistic fan-out, not one huge folder


def git(
    cwd: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode()


def env_path(i: int) -> str:
    return f"envs/ns{i // PER_NAMESPACE}/env{i}.yaml"


def make_catalog(bare: Path, size: int, config: str) -> None:
    """One commit with ``size`` environments, through one ``git fast-import`` stream."""
    env_text = env_yaml(
        {"v1": {"dependencies": ["python=3.11", "numpy"]}, "stable": {"points_to": "v1"}},
        owners=["team"],
    ).encode()
    lock_text = b"version: '1'\nmetadata: {}\npackage: []\n"
    meta_text = b"version: '1'\n"  # never re-read: only their presence freezes v1
    out = [
        b"blob\nmark :1\n",
        b"data %d\n%s\n" % (len(env_text), env_text),
        b"blob\nmark :2\n",
        b"data %d\n%s\n" % (len(lock_text), lock_text),
        b"blob\nmark :3\n",
        b"data %d\n%s\n" % (len(meta_text), meta_text),
    ]
    message = b"Catalog of %d environments" % size
    out.append(b"commit refs/heads/main\n")
    out.append(b"committer bench <bench@example.org> 1700000000 +0000\n")
    out.append(b"data %d\n%s\n" % (len(message), message))
    data = config.encode()
    out.append(b"M 100644 inline catalog.yaml\ndata %d\n%s\n" % (len(data), data))
    for i in range(size):
        name = f"ns{i // PER_NAMESPACE}/env{i}".encode()
        out.append(b"M 100644 :1 envs/%s.yaml\n" % name)
        out.append(b"M 100644 :2 locks/%s/v1.conda-lock.yml\n" % name)
        out.append(b"M 100644 :3 locks/%s/v1.meta.yaml\n" % name)
    out.append(b"done\n")
    git(bare, "fast-import", "--quiet", "--done", input=b"".join(out))


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
    """Install envctl's hook, then wrap it so each run's wall time lands in ``log``."""
    hook = install_hook(bare)
    real = hook.with_name("pre-receive.envctl")
    hook.rename(real)
    hook.write_text(
        "#!/bin/sh\n"
        "start=$(date +%s%N)\n"
        f"'{real}' \"$@\"\n"
        "rc=$?\n"
        "end=$(date +%s%N)\n"
        f"echo \"$start $end $rc\" >> '{log}'\n"
        "exit $rc\n"
    )
    hook.chmod(0o755)


def last_hook_seconds(log: Path) -> tuple[float, int]:
    start, end, rc = log.read_text().splitlines()[-1].split()
    return (int(end) - int(start)) / 1e9, int(rc)


def bench_size(root: Path, size: int, repeat: int, key: Path, pub: str) -> dict[str, list]:
    bare = root / f"server-{size}.git"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(bare))
    config = config_yaml(signers=[(CI, pub)], mutable_tags=["latest", "stable"])
    t0 = time.perf_counter()
    make_catalog(bare, size, config)
    made = time.perf_counter() - t0
    log = root / f"hook-{size}.log"
    timed_hook(bare, log)
    client = root / f"client-{size}.git"
    git(root, "clone", "--quiet", "--bare", str(bare), str(client))
    results: dict[str, list] = {"tag": [], "lock": [], "push": [], "made": [made]}
    tip = git(client, "rev-parse", "main").strip()
    for k in range(repeat):
        i = (k * 7919) % size  # a different environment each time
        path = env_path(i)
        tag = f"v{k + 2}"
        text = git(client, "cat-file", "blob", f"{tip}:{path}")
        data = yamlio.load(text)
        data["tags"][tag] = {"dependencies": ["python=3.12", f"pkg{k}"]}
        new_env = yamlio.dump(data)
        tip = commit_files(client, tip, {path: new_env}, f"Add {tag}")
        t0 = time.perf_counter()
        git(client, "push", "--quiet", str(bare), f"{tip}:refs/heads/main")
        results["push"].append(time.perf_counter() - t0)
        seconds, rc = last_hook_seconds(log)
        assert rc == 0, f"the hook refused a good push ({size} envs)"
        results["tag"].append(seconds)
        # CI locks the new tag: a signed commit with lock + meta.
        name = path[len("envs/") : -len(".yaml")]
        locks = lock_files({"catalog.yaml": config, path: new_env}, f"{name}:{tag}")
        tip = commit_files(client, tip, locks, f"Lock {name}:{tag}", key=key)
        git(client, "push", "--quiet", str(bare), f"{tip}:refs/heads/main")
        seconds, rc = last_hook_seconds(log)
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
        os.environ.update(
            {
                "HOME": str(home),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@example.org",
                "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@example.org",
            }
        )
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
