"""Generate a realistic envctl catalog of N environments in a real git repository, fast.

    .venv/bin/python benchmarks/gen_catalog.py OUT --envs 10000 [--seed 0] [--commits 300]
                                               [--bare] [--no-tree]

Shapes (deterministic for a seed):

- names ``team/env`` or ``team/project/env`` (about 80 environments per team, 40 % in a
  project folder), lower case with numeric suffixes so no two fold to the same key;
- 1-20 tags per environment (triangular, mode 3, mean 8): immutable ``v1..vk`` (half of
  them ``extends`` the previous one, a few extend another environment's ``v1``, the
  oldest sometimes ``retired:``), mutable pointers ``stable``/``latest``/``candidate``
  (``points_to``), rolling ``nightly`` and ``dev-*`` specs;
- every immutable tag but sometimes the newest (pending) is frozen: a conda-lock v1
  file and a meta; rolling ``nightly`` has both too. Locks hold 50-300 packages on each
  of 2 platforms (linux-64, osx-arm64), about 140 kB each;
- a history of hundreds of commits (``--commits``, default 300): half add batches of
  environments in an early state, half bump batches (new tags, their locks, pointers
  moved, old tags retired), with increasing dates and a few authors.

Lock blobs are shared: a lock's bytes come from a pool of distinct solutions (about one
per 25 environments, picked by team and tag number, as teams lock the same stack), and
those bytes carry no alias (``envctl.alias`` is optional in ``custom_metadata``), so one
blob serves many paths. A real repository stores near-identical locks as git deltas of
each other; ``fast-import`` cannot find cross-path deltas cheaply, so sharing whole blobs
is how 10,000 environments (about 80,000 locks) stay at a few hundred MB and a minute or
two to build, instead of 11 GB. Metas are unique per tag (alias, ids, request), as in a
real catalog, and record the request as the resolver normalises it (what ``lint``
compares with the spec); rolling tags have no ``exclude_newer``. The req_ids are
well-formed but not recomputed (only a push checks them, and the benchmarks push locks
made by ``envctl.testing.handlocks`` with real ids).

Output: ``OUT/`` is the git repository (``--bare``: a bare one). Without ``--bare`` and
``--no-tree``, its work tree holds the HEAD tree written directly (locks hard-linked from
``OUT/.git/envctl-pool/``) and there is no index: it is for read-only use (``envctl
lint``, ``list``, ``show``), and ``git status`` would re-read every file. ``OUT``'s
``gen_catalog.json`` (inside the git dir) records the counts and sample names.

The generated catalog lints clean; ``benchmarks/run.py`` checks that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

CHANNEL_URL = "https://conda.example.org/main"  # as envctl.testing.handlocks writes locks
FORGE_URL = "https://conda.example.org/conda-forge"
PYPI_URL = "https://pypi.example.org/simple"
PLATFORMS = ("linux-64", "osx-arm64")
MUTABLE_TAGS = ("latest", "candidate", "stable", "nightly", "dev-*")
PER_TEAM = 80
EXCLUDE_NEWER = "2024-01-01T00:00:00Z"
EPOCH = 1_700_000_000
INFO_FILE = "gen_catalog.json"
GENERATOR_VERSION = 4  # bump when shapes change, so cached catalogs are rebuilt

TEAMS = (
    "ranking", "vision", "search", "ads", "fraud", "growth", "infra", "speech", "nlp",
    "pricing", "risk", "maps", "payments", "recsys", "forecast", "security", "health",
    "robotics", "platform", "research",
)
WORDS = (
    "base", "train", "serve", "etl", "notebook", "gpu", "cpu", "eval", "batch", "stream",
    "features", "embed", "tools", "web", "agent", "report", "ingest", "label", "tune", "api",
)
# Requirements people write; lint normalises each distinct string once (as in a real catalog).
CONDA_DEPS = (
    "numpy", "numpy>=1.26", "pandas", "pandas>=2.1", "scipy", "scikit-learn", "scikit-learn 1.4.*",
    "matplotlib", "seaborn", "pyarrow>=14", "polars", "duckdb", "sqlalchemy", "requests",
    "pyyaml", "jinja2", "click", "rich", "tqdm", "boto3", "s3fs", "fsspec", "dask",
    "distributed", "xgboost", "lightgbm", "catboost", "pytorch", "torchvision", "jax",
    "tensorflow", "onnx", "onnxruntime", "opencv", "pillow", "scikit-image", "spacy", "nltk",
    "transformers", "tokenizers", "statsmodels", "prophet", "networkx", "shapely", "geopandas",
    "h5py", "zarr", "xarray", "numba", "cython", "pydantic>=2", "fastapi", "uvicorn", "gunicorn",
    "psycopg2", "redis-py", "kafka-python", "protobuf", "grpcio", "libblas=*=*mkl", "mkl",
    "cudatoolkit 11.8.*", "nccl", "openssl>=3", "git", "make", "cmake", "compilers",
)
PYTHONS = ("python=3.10", "python=3.11", "python=3.12", "python >=3.11,<3.13")
PYPI_DEPS = (
    "itsdangerous==2.1.2", "requests>=2.31", "mlflow>=2.9", "wandb", "great-expectations",
    "feast[redis]", "evidently==0.4.11", "sentry-sdk", "datadog", "slack-sdk>=3",
)
# Package names that appear in locks: the requirements' own names plus dependencies.
LOCK_NAMES = tuple(
    sorted(
        (
            {d.split()[0].split("=")[0].split(">")[0] for d in CONDA_DEPS}
            | {f"lib{w}{i}" for w in ("z", "ssl", "ffi", "curl", "xml", "png", "jpeg", "blas")
               for i in range(40)}
            | {f"py-{w}-{i}" for w in WORDS for i in range(20)}
        )
        - {"python"}
    )
)


def git(
    cwd: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    """Run git; exit with its message on failure (a benchmark has no one to recover)."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True,
        env={**os.environ, **(env or {})}, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode()


def quiet_git_env(home: Path) -> dict[str, str]:
    """Identity and isolation for benchmark git calls (no user or system config)."""
    return {
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.org",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.org",
    }


# -- the shapes ------------------------------------------------------------------------------


@dataclass
class TagPlan:
    name: str
    body: list[str]  # YAML lines under the tag key, indented by 4
    lock: int | None = None  # pool index when the tag is frozen (or rolling with a lock)
    deps: list[str] = field(default_factory=list)
    pypi: list[str] = field(default_factory=list)


@dataclass
class EnvPlan:
    name: str
    description: str
    owners: list[str]
    immutable: list[TagPlan]
    pointers: list[str]  # mutable pointer tags, e.g. ["stable", "latest"]
    rolling: list[TagPlan]
    retire_first: bool
    pending_last: bool
    start: int  # number of immutable tags in the first version of the file

    @property
    def path(self) -> str:
        return f"envs/{self.name}.yaml"


def _q(text: str) -> str:
    """A YAML flow item: quote what a reader could misread (commas, brackets, ``*``)."""
    if any(c in text for c in ",[]{}*:#&!|>'\"%@`") or text[:1] in "-?":
        return "'" + text.replace("'", "''") + "'"
    return text


def _flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def plan_catalog(n_envs: int, rng: random.Random) -> list[EnvPlan]:
    teams = max(1, -(-n_envs // PER_TEAM))
    plans: list[EnvPlan] = []
    first_in_team: dict[int, str] = {}
    pool = max(8, n_envs // 25)
    for i in range(n_envs):
        team_index = i % teams
        team = f"{TEAMS[team_index % len(TEAMS)]}{team_index // len(TEAMS) or ''}"
        word = WORDS[(i // teams) % len(WORDS)]
        if rng.random() < 0.4:
            name = f"{team}/{WORDS[(i // teams // 3) % len(WORDS)]}-proj/{word}-{i}"
        else:
            name = f"{team}/{word}-{i}"
        total = min(20, max(1, round(rng.triangular(1, 20, 3))))
        pointers = [t for t, p in (("stable", 0.6), ("latest", 0.3), ("candidate", 0.1))
                    if rng.random() < p]
        rolling_names = [t for t, p in (("nightly", 0.2), (f"dev-{word}", 0.1))
                         if rng.random() < p]
        k = max(1, total - len(pointers) - len(rolling_names))
        immutable: list[TagPlan] = []
        for v in range(1, k + 1):
            tag = TagPlan(f"v{v}", [])
            if v > 1 and rng.random() < 0.5:
                tag.deps = rng.sample(CONDA_DEPS, rng.randint(1, 3))
                tag.body.append(f"    extends: v{v - 1}")
            else:
                if v == 1 and team_index in first_in_team and rng.random() < 0.05:
                    tag.body.append(f"    extends: {first_in_team[team_index]}:v1")
                    tag.deps = rng.sample(CONDA_DEPS, rng.randint(1, 3))
                else:
                    tag.deps = [rng.choice(PYTHONS), *rng.sample(CONDA_DEPS, rng.randint(2, 14))]
                if rng.random() < 0.3:
                    tag.pypi = rng.sample(PYPI_DEPS, rng.randint(1, 3))
                if rng.random() < 0.1:
                    tag.body.append("    channels: [main, conda-forge]")
            tag.body.append(f"    dependencies: {_flow(tag.deps)}")
            if tag.pypi:
                tag.body.append(f"    pypi: {_flow(tag.pypi)}")
            tag.lock = (team_index * 7 + v) % pool
            immutable.append(tag)
        rolling = []
        for t in rolling_names:
            tag = TagPlan(t, [], deps=[rng.choice(PYTHONS), *rng.sample(CONDA_DEPS, 3)])
            tag.body.append(f"    dependencies: {_flow(tag.deps)}")
            tag.lock = (team_index * 11 + len(t)) % pool if t == "nightly" else None
            rolling.append(tag)
        pending_last = k > 1 and rng.random() < 0.15
        plans.append(
            EnvPlan(
                name=name,
                description=f"{word.capitalize()} environment {i} of the {team} team",
                owners=[team] + ([f"{team}-lead"] if rng.random() < 0.3 else []),
                immutable=immutable,
                pointers=pointers,
                rolling=rolling,
                retire_first=k >= 4 and rng.random() < 0.1,
                pending_last=pending_last,
                start=max(1, k - rng.randint(0, 2)),
            )
        )
        first_in_team.setdefault(team_index, name)
    return plans


def render_env(env: EnvPlan, upto: int, final: bool) -> str:
    """The environment file with its first ``upto`` immutable tags."""
    lines = [
        f"description: {env.description}",
        f"owners: {_flow(env.owners)}",
        "tags:",
    ]
    for index, tag in enumerate(env.immutable[:upto]):
        lines.append(f"  {tag.name}:")
        lines.extend(tag.body)
        if index == 0 and env.retire_first and final:
            lines.append("    retired: superseded, see v2 (CVE-2024-0001)")
    # Pointers target frozen immutable tags: stable one behind the newest, latest the newest.
    frozen = upto - 1 if (env.pending_last and upto == len(env.immutable)) else upto
    newest = max(frozen, 1)
    for tag in env.pointers:
        target = newest if tag != "stable" else max(newest - 1, 1)
        if target == 1 and env.retire_first and final and upto > 1:
            target = 2
        lines.append(f"  {tag}: {{points_to: v{target}}}")
    for tag in env.rolling:
        lines.append(f"  {tag.name}:")
        lines.extend(tag.body)
    return "\n".join(lines) + "\n"


def locked_tags(env: EnvPlan, upto: int) -> list[TagPlan]:
    """Tags with a lock in the version with ``upto`` immutable tags."""
    tags = env.immutable[:upto]
    if env.pending_last and upto == len(env.immutable):
        tags = tags[:-1]
    return [*tags, *(t for t in env.rolling if t.lock is not None)]


# -- locks and metas --------------------------------------------------------------------------


@dataclass
class PoolLock:
    text: bytes
    sha256: str
    full_ids: dict[str, str]


def make_pool_lock(index: int, rng: random.Random) -> PoolLock:
    """One distinct solution: 50-300 packages per platform, conda-lock v1 layout."""
    from envctl.resolve.ids import full_id_of_entries

    entries: list[str] = []
    full_ids: dict[str, str] = {}
    for platform in PLATFORMS:
        names = ["python", *rng.sample(LOCK_NAMES, rng.randint(49, 299))]
        files: list[str] = []
        for name in sorted(names):
            version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            build = f"h{rng.getrandbits(28):07x}_{rng.randint(0, 3)}"
            filename = f"{name}-{version}-{build}.conda"
            url = f"{CHANNEL_URL}/{platform}/{filename}"
            sha256 = hashlib.sha256(url.encode()).hexdigest()
            md5 = hashlib.md5(url.encode()).hexdigest()
            deps = "".join(
                f"    {d}: '>={rng.randint(0, 5)}.{rng.randint(0, 9)}'\n"
                for d in rng.sample(LOCK_NAMES, rng.randint(0, 4))
            )
            entries.append(
                f"- name: {name}\n  version: '{version}'\n  manager: conda\n"
                f"  platform: {platform}\n"
                + (f"  dependencies:\n{deps}" if deps else "  dependencies: {}\n")
                + f"  url: {url}\n  hash:\n    md5: '{md5}'\n    sha256: '{sha256}'\n"
                "  category: main\n  optional: false\n"
            )
            files.append(f"{filename}#{sha256}")
        full_ids[platform] = full_id_of_entries(platform, files)
    content_hash = "".join(
        f"    {p}: '{hashlib.sha1(f'pool{index}{p}'.encode()).hexdigest()}'\n" for p in PLATFORMS
    )
    custom = "".join(f"    envctl.full_id.{p}: '{f}'\n" for p, f in full_ids.items())
    text = (
        "# conda-lock v1 lockfile, written by envctl. DO NOT EDIT.\n"
        f"version: '1'\nmetadata:\n  content_hash:\n{content_hash}"
        f"  channels:\n  - {CHANNEL_URL}\n  platforms:\n"
        + "".join(f"  - {p}\n" for p in PLATFORMS)
        + f"  sources: []\n  custom_metadata:\n{custom}package:\n"
        + "".join(entries)
    ).encode()
    return PoolLock(text, hashlib.sha256(text).hexdigest(), full_ids)


_VIRTUAL = {
    "linux-64": {"__archspec": "1=x86_64", "__glibc": "2.17", "__linux": "5.10", "__unix": "0"},
    "osx-arm64": {"__archspec": "1=arm64", "__osx": "11.0", "__unix": "0"},
}


@cache
def _normal_conda(text: str) -> str:
    from envctl.spec import normalize_conda_spec

    return normalize_conda_spec(text)


@cache
def _normal_pypi(text: str) -> str:
    from envctl.spec import normalize_pypi_requirement

    return normalize_pypi_requirement(text)


def render_meta(alias: str, tag: TagPlan, lock: PoolLock, base: str | None,
                base_lock: PoolLock | None, rolling: bool) -> bytes:
    """The meta CI writes: the request as the resolver normalises it (what ``lint`` compares
    with the spec), the base's full_id, no ``exclude_newer`` for a rolling tag."""
    deps = sorted({_normal_conda(d) for d in tag.deps})
    pypi = sorted({_normal_pypi(r) for r in tag.pypi})
    exclude = None if rolling else EXCLUDE_NEWER
    platforms = {}
    for p in PLATFORMS:
        platforms[p] = {
            "req_id": hashlib.sha1(f"{alias}|{p}".encode()).hexdigest(),
            "full_id": lock.full_ids[p],
            "request": {
                "version": "1", "platform": p, "channels": ["main", "conda-forge"],
                "dependencies": deps, "pypi": pypi, "virtual_packages": _VIRTUAL[p],
                "base_full_id": base_lock.full_ids[p] if base_lock is not None else None,
                "exclude_newer": exclude,
            },
        }
    meta = {
        "version": "1", "alias": alias, "base": base, "exclude_newer": exclude,
        "resolved_at": "2024-01-02T00:00:00Z", "resolved_by": "ci", "envctl_version": "0.1.0",
        "tools": {}, "lock_sha256": lock.sha256, "platforms": platforms,
    }
    # The bytes CI writes (envctl.meta.dump_meta; a test checks they agree), without a
    # pydantic model per meta: 67,000 of them would double the build time.
    tag_name = alias.rsplit(":", 1)[1]
    return (
        f"# Resolved by envctl; do not edit. The lockfile is {tag_name}.conda-lock.yml\n"
        + json.dumps(meta, indent=2) + "\n"
    ).encode()


def make_meta(env: EnvPlan, tag: TagPlan, pool: list[PoolLock],
              locks_by_alias: dict[str, int]) -> bytes:
    assert tag.lock is not None
    base = _base_of(env, tag)
    base_index = locks_by_alias.get(base) if base else None
    return render_meta(f"{env.name}:{tag.name}", tag, pool[tag.lock], base,
                       None if base_index is None else pool[base_index], tag in env.rolling)


def locks_of(plans: list[EnvPlan]) -> dict[str, int]:
    """``alias -> pool index`` of every tag that has a lock in the final catalog."""
    return {f"{e.name}:{t.name}": t.lock for e in plans for t in locked_tags(e, len(e.immutable))
            if t.lock is not None}


def _base_of(env: EnvPlan, tag: TagPlan) -> str | None:
    for line in tag.body:
        if line.startswith("    extends: "):
            target = line.split(": ", 1)[1]
            return target if ":" in target else f"{env.name}:{target}"
    return None


# -- the repository ----------------------------------------------------------------------------


def config_text(signers: Sequence[tuple[str, str]] = ()) -> str:
    lines = [
        "version: '1'",
        "name: bench",
        "description: A generated catalog for envctl's benchmarks",
        "channels:",
        f"  main: {CHANNEL_URL}",
        f"  conda-forge: {FORGE_URL}",
        f"platforms: [{', '.join(PLATFORMS)}]",
        f"mutable_tags: [{', '.join(repr(t) if '*' in t else t for t in MUTABLE_TAGS)}]",
        "branch: main",
        f"pypi_index: {PYPI_URL}",
        "admins: [platform-team]",
    ]
    if signers:
        lines.append("allowed_signers:")
        for principal, key in signers:
            lines.append(f"- principal: {principal}")
            lines.append(f"  key: {key}")
    return "\n".join(lines) + "\n"


@dataclass
class Generated:
    """What ``generate`` made; stored as ``gen_catalog.json`` in the git dir."""

    path: str  # the repository (work tree root, or the bare repository)
    git_dir: str
    envs: int
    tags: int
    frozen_tags: int
    locks: int  # lock files (each with a meta) at HEAD
    distinct_locks: int
    commits: int
    seconds: float
    repo_bytes: int
    sample_alias: str  # a frozen tag with a lock, for ``envctl show``
    sample_env: str  # an environment file to bump in hook benchmarks
    package: str  # a package many locks install, for ``envctl search --package``
    config: str
    params: dict[str, object]


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def _stream(
    plans: list[EnvPlan], pool: list[PoolLock], config: str, commits: int, rng: random.Random,
) -> Iterator[bytes]:
    """The ``git fast-import`` stream, commit by commit (never all in memory)."""
    locks_by_alias = locks_of(plans)
    people = [("Alice", "alice"), ("Bob", "bob"), ("Chen", "chen"), ("Dana", "dana")]
    clock = EPOCH
    written: set[int] = set()

    def commit(message: str, files: list[tuple[str, bytes | int]]) -> Iterator[bytes]:
        nonlocal clock
        clock += rng.randint(600, 7200)
        for _, body in files:
            if isinstance(body, int) and body not in written:
                written.add(body)
                yield b"blob\nmark :%d\n" % (body + 1) + _data(pool[body].text)
        who, mail = rng.choice(people)
        head = (
            f"commit refs/heads/main\nauthor {who} <{mail}@example.org> {clock} +0000\n"
            f"committer {who} <{mail}@example.org> {clock} +0000\n"
        ).encode()
        parts = [head, _data(message.encode())]
        for path, body in files:
            if isinstance(body, int):
                parts.append(b"M 100644 :%d %s\n" % (body + 1, path.encode()))
            else:
                parts.append(b"M 100644 inline %s\n" % path.encode() + _data(body))
        parts.append(b"\n")
        yield b"".join(parts)

    readme = b"# bench\n\nA generated catalog.\n"
    yield from commit("Create the catalog", [("catalog.yaml", config.encode()),
                                             ("README.md", readme)])

    def version_files(env: EnvPlan, upto: int, before: int, final: bool) -> list:
        files: list[tuple[str, bytes | int]] = [
            (env.path, render_env(env, upto, final).encode())
        ]
        already = {t.name for t in locked_tags(env, before)} if before else set()
        for tag in locked_tags(env, upto):
            if tag.name in already and tag not in env.rolling:
                continue
            assert tag.lock is not None
            lock_dir = f"locks/{env.name}"
            files.append((f"{lock_dir}/{tag.name}.conda-lock.yml", tag.lock))
            files.append((f"{lock_dir}/{tag.name}.meta.yaml",
                          make_meta(env, tag, pool, locks_by_alias)))
        return files

    add_commits = max(1, min(len(plans), commits // 2))
    per_add = -(-len(plans) // add_commits)
    # Bumps in rounds, so an environment's versions follow each other in the history.
    bumps: list[tuple[EnvPlan, int, int]] = []
    for round_ in range(1, 3):
        for env in plans:
            upto = env.start + round_
            if upto <= len(env.immutable):
                bumps.append((env, upto, upto - 1))
    for env in plans:  # a retirement of an environment created in its final shape
        if env.retire_first and env.start == len(env.immutable):
            bumps.append((env, len(env.immutable), len(env.immutable)))
    for chunk_start in range(0, len(plans), per_add):
        chunk = plans[chunk_start : chunk_start + per_add]
        files = []
        for env in chunk:
            final = env.start == len(env.immutable) and not env.retire_first
            files += version_files(env, env.start, 0, final)
        names = ", ".join(e.name for e in chunk[:3]) + (" ..." if len(chunk) > 3 else "")
        yield from commit(f"Add {len(chunk)} environments: {names}", files)
    bump_commits = max(1, commits - add_commits - 1)
    per_bump = max(1, -(-len(bumps) // bump_commits))
    for chunk_start in range(0, len(bumps), per_bump):
        files = []
        chunk = bumps[chunk_start : chunk_start + per_bump]
        for env, upto, before in chunk:
            final = upto == len(env.immutable)
            files += version_files(env, upto, before, final)
        # One file per path per commit: a later version of the same env wins.
        unique = list(dict(files).items())
        yield from commit(f"Bump {len(chunk)} environments (new tags, locks, pointers)", unique)
    yield b"done\n"


def generate(
    out: Path,
    n_envs: int,
    *,
    seed: int = 0,
    commits: int = 300,
    signers: Sequence[tuple[str, str]] = (),
    bare: bool = False,
    work_tree: bool = True,
) -> Generated:
    """Write the catalog into a new repository at ``out`` (removed first if it exists)."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    home = out.parent / f".{out.name}-home"
    home.mkdir(exist_ok=True)
    env = quiet_git_env(home)
    git(out, "init", "--quiet", *(["--bare"] if bare else []), "-b", "main", ".", env=env)
    git_dir = out if bare else out / ".git"
    plans = plan_catalog(n_envs, rng)
    pool_size = max(8, n_envs // 25)
    pool = [make_pool_lock(i, rng) for i in range(pool_size)]
    config = config_text(signers)
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=out, stdin=subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert proc.stdin is not None
    n_commits = 0
    for chunk in _stream(plans, pool, config, commits, rng):
        if chunk.startswith(b"commit "):
            n_commits += 1
        proc.stdin.write(chunk)
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    if work_tree and not bare:
        write_tree(out, git_dir, plans, pool, config)
        # An index whose stat data matches the files, as a checkout leaves it: 'git status'
        # is clean and tools may take blob ids from it (search does). Refreshing hashes
        # every file once.
        git(out, "read-tree", "HEAD", env=env)
        git(out, "update-index", "-q", "--refresh", env=env)
    used = {t.lock for e in plans for t in locked_tags(e, len(e.immutable))}
    sample = next(
        (f"{e.name}:{t.name}" for e in plans for t in locked_tags(e, len(e.immutable))
         if t in e.immutable and len(e.immutable) > 2), f"{plans[0].name}:v1",
    )
    info = Generated(
        path=str(out),
        git_dir=str(git_dir),
        envs=len(plans),
        tags=sum(len(e.immutable) + len(e.pointers) + len(e.rolling) for e in plans),
        frozen_tags=sum(len(locked_tags(e, len(e.immutable))) - sum(
            1 for t in e.rolling if t.lock is not None) for e in plans),
        locks=sum(len(locked_tags(e, len(e.immutable))) for e in plans),
        distinct_locks=len(used),
        commits=n_commits,
        seconds=time.perf_counter() - t0,
        repo_bytes=_du(git_dir),
        sample_alias=sample,
        sample_env=plans[len(plans) // 2].path,
        package="numpy",
        config=config,
        params={"envs": n_envs, "seed": seed, "commits": commits, "signers": list(signers),
                "bare": bare, "work_tree": work_tree, "version": GENERATOR_VERSION},
    )
    (git_dir / INFO_FILE).write_text(json.dumps(asdict(info), indent=2))
    shutil.rmtree(home, ignore_errors=True)
    return info


def write_tree(
    out: Path, git_dir: Path, plans: list[EnvPlan], pool: list[PoolLock], config: str
) -> None:
    """The HEAD tree as plain files, locks hard-linked from one copy per distinct blob."""
    locks_by_alias = locks_of(plans)
    pool_dir = git_dir / "envctl-pool"
    pool_dir.mkdir()
    pool_paths: dict[int, Path] = {}
    (out / "catalog.yaml").write_text(config)
    (out / "README.md").write_text("# bench\n\nA generated catalog.\n")
    made: set[Path] = set()

    def folder(path: Path) -> None:
        if path not in made:
            path.mkdir(parents=True, exist_ok=True)
            made.add(path)

    for env in plans:
        upto = len(env.immutable)
        env_file = out / env.path
        folder(env_file.parent)
        env_file.write_text(render_env(env, upto, True))
        lock_dir = out / "locks" / env.name
        tags = locked_tags(env, upto)
        if tags:
            folder(lock_dir)
        for tag in tags:
            assert tag.lock is not None
            if tag.lock not in pool_paths:
                pool_paths[tag.lock] = pool_dir / f"{tag.lock}.conda-lock.yml"
                pool_paths[tag.lock].write_bytes(pool[tag.lock].text)
            os.link(pool_paths[tag.lock], lock_dir / f"{tag.name}.conda-lock.yml")
            (lock_dir / f"{tag.name}.meta.yaml").write_bytes(
                make_meta(env, tag, pool, locks_by_alias)
            )


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def load_info(git_dir: Path) -> Generated | None:
    """The record of an earlier ``generate`` into ``git_dir``, if any."""
    try:
        return Generated(**json.loads((git_dir / INFO_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--bare", action="store_true", help="a bare repository (no work tree)")
    parser.add_argument("--no-tree", action="store_true", help="do not write the work tree")
    args = parser.parse_args(argv)
    info = generate(args.out, args.envs, seed=args.seed, commits=args.commits, bare=args.bare,
                    work_tree=not args.no_tree)
    print(
        f"{info.envs:,} environments, {info.tags:,} tags, {info.locks:,} locks "
        f"({info.distinct_locks:,} distinct), {info.commits:,} commits, "
        f"{info.repo_bytes / 1e6:,.0f} MB of git objects, in {info.seconds:.1f} s -> {info.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
