"""One code path for every place the rules run: the pre-receive hook, ``envctl check`` in CI
and ``envctl check --history`` audits.

This module gathers the data :mod:`envctl.policy` judges, with a handful of git processes
per push whatever its size: ``rev-list`` for the commits, one ``diff-tree --stdin`` for
all their changed paths, one ``cat-file --batch`` for every file read, one
``cat-file --batch-check`` for sizes, and ``verify-commit`` only for commits that write
locks. Nothing here lists the whole catalog, so the cost follows the push, not the catalog.

Git runs with ``scrub=False`` inside a hook, so the quarantine git gives the hook (the
pushed objects are only visible through its environment) is inherited.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from envctl import yamlio
from envctl.config import CONFIG_FILE, CatalogConfig, parse_config
from envctl.errors import CatalogError, EnvctlError, GitError
from envctl.git import BlobReader, rev_parse, run_git
from envctl.names import LOCK_FILE_SUFFIX
from envctl.policy import (
    LOCKS,
    ZERO_SHA,
    CommitInfo,
    FileChange,
    MemorySnapshot,
    PushContext,
    RefUpdate,
    SignatureCheck,
    Snapshot,
    Violation,
    check_commit,
    check_ref_update,
    is_protected,
    needs_signature,
)

_CHECKED_PREFIXES = ("envs/", LOCKS)
_UNKNOWN = object()  # not in the push's diff: read the file by "rev:path"
#: At most this many bytes of the push's files are read ahead in one batch.
PREFETCH_BYTES = 64_000_000


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    committer_email: str


class GitSnapshot:
    """A :class:`~envctl.policy.Snapshot` of one revision, read through a shared reader."""

    def __init__(self, repo: Repo, rev: str) -> None:
        self.repo = repo
        self.rev = rev

    def read(self, path: str) -> bytes | None:
        known = self.repo.blob_ids.get((self.rev, path), _UNKNOWN)
        if known is None:
            return None  # the push's diff says there is no file here
        if known is not _UNKNOWN:
            # By object id: git finds it at once, where "rev:path" walks the trees (about a
            # millisecond in a large catalog, for every file a push touches).
            size = self.repo.blob_sizes.get(known)
            limit = read_limit(path)
            if size is not None and limit is not None and size > limit:
                return None  # refused by its size in judge_commits, never read
            data = self.repo.prefetched.get(known)
            return data if data is not None else self.repo.blobs.read(known)
        return self.repo.blobs.read(f"{self.rev}:{self.repo.subdir}{path}")

    def listdir(self, path: str) -> list[str]:
        # Cached per revision and folder (git objects never change): the name-collision rule
        # lists every folder of every new environment's name, so a push of 10,000 new
        # environments in a few folders would otherwise start 30,000 git processes.
        key = (self.rev, path)
        found = self.repo.listings.get(key)
        if found is None:
            spec = (self.repo.subdir + path.strip("/") + "/" if path.strip("/")
                    else self.repo.subdir)
            out = self.repo.git(
                ["ls-tree", "-z", "--name-only", "--full-tree", self.rev, "--", spec or "."]
            ).stdout
            found = [p.rsplit("/", 1)[-1]
                     for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
            self.repo.listings[key] = found
        return list(found)

    def paths(self, prefix: str) -> list[str]:
        spec = self.repo.subdir + prefix.strip("/") + "/"
        out = self.repo.git(
            ["ls-tree", "-r", "-z", "--name-only", "--full-tree", self.rev, "--", spec]
        ).stdout
        cut = len(self.repo.subdir)
        return [p[cut:] for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


class Repo:
    """git access for one check run. ``subdir``: the catalog's folder in the repository."""

    def __init__(self, path: str | os.PathLike[str], *, scrub: bool = True,
                 subdir: str = "") -> None:
        self.path = Path(path)
        self.scrub = scrub
        self.subdir = subdir.strip("/") + "/" if subdir.strip("/") else ""
        self.blobs = BlobReader(self.path, scrub=scrub)
        self._configs: dict[bytes, CatalogConfig | EnvctlError] = {}
        self.listings: dict[tuple[str, str], list[str]] = {}  # (rev, folder) -> names
        # What the push's diff says about its paths: (commit, path) -> blob id, or None
        # where the commit has no file; and blob id -> size.
        self.blob_ids: dict[tuple[str, str], str | None] = {}
        self.blob_sizes: dict[str, int] = {}
        self.prefetched: dict[str, bytes] = {}  # blob id -> content, read in one batch

    def close(self) -> None:
        self.blobs.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def git(self, args: Sequence[str], *, input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return run_git(self.path, args, input=input, check=check, scrub=self.scrub)

    def snapshot(self, rev: str | None) -> Snapshot:
        return GitSnapshot(self, rev) if rev else MemorySnapshot()

    def rev(self, rev: str) -> str:
        return rev_parse(self.path, rev, scrub=self.scrub)

    def config_at(self, rev: str) -> CatalogConfig | EnvctlError | None:
        """The revision's catalog config; None without one; the error when it is invalid."""
        data = self.blobs.read(f"{rev}:{self.subdir}{CONFIG_FILE}")
        if data is None:
            return None
        if data not in self._configs:
            try:
                self._configs[data] = parse_config(yamlio.load(data, file=CONFIG_FILE))
            except EnvctlError as exc:
                self._configs[data] = exc
        return self._configs[data]

    def is_ancestor(self, old: str, new: str) -> bool:
        proc = self.git(["merge-base", "--is-ancestor", old, new], check=False)
        if proc.returncode not in (0, 1):
            raise GitError(f"cannot compare {old[:12]} and {new[:12]}",
                           fix="check that both commits exist")
        return proc.returncode == 0

    def commits(self, revs: Sequence[str]) -> list[Commit]:
        """The commits ``rev-list`` selects, parents before children."""
        out = self.git(
            ["rev-list", "--reverse", "--topo-order", "--no-commit-header",
             "--format=%H%x1f%P%x1f%ce", *revs, "--"]
        ).stdout.decode("utf-8", "replace")
        commits = []
        for line in out.splitlines():
            if not line:
                continue
            sha, parents, email = line.split("\x1f")
            commits.append(Commit(sha, tuple(parents.split()), email))
        return commits

    def changes(self, commits: Sequence[Commit]) -> dict[str, tuple[FileChange, ...]]:
        """Every commit's changed paths against its first parent, from one ``diff-tree``."""
        if not commits:
            return {}
        out = self.git(
            ["diff-tree", "--stdin", "-r", "-z", "--raw", "--no-renames", "--root", "--always",
             "--diff-merges=first-parent", "--no-ext-diff"],
            input="".join(c.sha + "\n" for c in commits).encode(),
        ).stdout
        raw: dict[str, list[tuple[str, str, str, str]]] = {}
        current: list[tuple[str, str, str, str]] = []
        by_sha = {c.sha: c for c in commits}
        commit: Commit | None = None
        tokens = out.split(b"\0")
        i = 0
        while i < len(tokens):
            token = tokens[i].decode("utf-8", "surrogateescape").strip("\n")
            i += 1
            if not token:
                continue
            if token.startswith(":"):
                old_mode, new_mode, old_sha, new_sha, status = token[1:].split()
                path = tokens[i].decode("utf-8", "surrogateescape")
                i += 1
                if path.startswith(self.subdir):
                    rel = path[len(self.subdir):]
                    current.append((rel, status[0], old_mode, f"{new_mode} {new_sha}"))
                    if commit is not None:
                        self.blob_ids[(commit.sha, rel)] = (
                            None if status[0] == "D" or new_sha == ZERO_SHA else new_sha)
                        if commit.parents:
                            self.blob_ids.setdefault(
                                (commit.parents[0], rel),
                                None if old_sha == ZERO_SHA else old_sha)
            else:
                current = raw.setdefault(token, [])
                commit = by_sha.get(token)
        return self._enrich(raw, by_sha)

    def _enrich(self, raw: dict[str, list[tuple[str, str, str, str]]],
                by_sha: dict[str, Commit]) -> dict[str, tuple[FileChange, ...]]:
        """Add blob sizes (every written file: YAML too large to read is refused unread) and
        merge inheritance of locks."""
        queries: list[str] = []
        for sha, entries in raw.items():
            for path, status, _old_mode, new in entries:
                new_mode, new_sha = new.split()
                if read_limit(path) is not None:
                    old_sha = self.blob_ids.get((by_sha[sha].parents[0], path)) if (
                        by_sha[sha].parents) else None
                    if old_sha:
                        queries.append(old_sha)
                if status == "D":
                    continue
                queries.append(new_sha)
                if path.startswith(LOCKS):
                    for parent in by_sha[sha].parents[1:]:
                        queries.append(f"{parent}:{self.subdir}{path}")
        answers = self._batch_check(queries)
        for name, (_, size) in answers.items():
            if size is not None and ":" not in name:
                self.blob_sizes[name] = size
        result: dict[str, tuple[FileChange, ...]] = {}
        for sha, entries in raw.items():
            changes = []
            for path, status, old_mode, new in entries:
                new_mode, new_sha = new.split()
                size = answers.get(new_sha, (None, None))[1] if status != "D" else None
                inherited = status != "D" and path.startswith(LOCKS) and any(
                    answers.get(f"{p}:{self.subdir}{path}", (None, None))[0] == new_sha
                    for p in by_sha[sha].parents[1:]
                )
                changes.append(FileChange(path, status, old_mode, new_mode, size, inherited))
            result[sha] = tuple(changes)
        return result

    def prefetch(self, budget: int = PREFETCH_BYTES) -> None:
        """Read every file the push's diff names and the rules parse, in one ``cat-file
        --batch`` call, up to ``budget`` bytes: one round trip instead of one per file (each
        costs a context switch both ways, a millisecond on a busy 2-core server)."""
        wanted: dict[str, None] = {}
        total = 0
        for (_rev, path), sha in self.blob_ids.items():
            limit = read_limit(path)
            size = self.blob_sizes.get(sha) if sha else None
            if sha is None or limit is None or size is None or size > limit:
                continue
            if sha in self.prefetched or sha in wanted or total + size > budget:
                continue
            total += size
            wanted[sha] = None
        if not wanted:
            return
        out = self.git(["cat-file", "--batch"],
                       input="".join(sha + "\n" for sha in wanted).encode()).stdout
        pos = 0
        for sha in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                self.prefetched[sha] = out[pos : pos + size]
                pos += size + 1
            elif len(header) == 3:  # not a blob: read on demand, as before
                pos += int(header[2]) + 1

    def _batch_check(self, queries: Iterable[str]) -> dict[str, tuple[str | None, int | None]]:
        """``name -> (object id, size)`` for every query, (None, None) when missing."""
        names = list(dict.fromkeys(queries))
        if not names:
            return {}
        out = self.git(["cat-file", "--batch-check"],
                       input="".join(n + "\n" for n in names).encode()).stdout
        answers: dict[str, tuple[str | None, int | None]] = {}
        for name, line in zip(names, out.decode("utf-8", "replace").splitlines(), strict=False):
            parts = line.split()
            if len(parts) == 3 and parts[1] != "missing":
                answers[name] = (parts[0], int(parts[2]))
            else:
                answers[name] = (None, None)
        return answers


ConfigFor = Callable[[Commit], CatalogConfig]


def read_limit(path: str) -> int | None:
    """The most bytes the check reads of a file it parses (None: it never parses it)."""
    if path.startswith(LOCKS) and path.endswith(LOCK_FILE_SUFFIX):
        return yamlio.MAX_LOCK_BYTES
    if path.startswith(_CHECKED_PREFIXES) or path == CONFIG_FILE:
        return yamlio.MAX_BYTES
    return None


def oversized(sha: str, changes: Sequence[FileChange]) -> list[Violation]:
    """Refusals of files the check would parse but that are over its size limit, from the
    sizes git reports: a 100 MB blob is refused without being read."""
    found = []
    for change in changes:
        limit = read_limit(change.path)
        if limit is not None and change.size is not None and change.size > limit:
            found.append(Violation(
                f"file is {change.size} bytes, over the {limit}-byte limit", commit=sha,
                file=change.path, rule="file-too-large",
                fix="keep environment files, metas and catalog.yaml under "
                f"{yamlio.MAX_BYTES // 1_000_000} MB and locks under "
                f"{yamlio.MAX_LOCK_BYTES // 1_000_000} MB",
            ))
    return found


def judge_commits(repo: Repo, commits: Sequence[Commit], config_for: ConfigFor,
                  pusher: str | None = None) -> list[Violation]:
    """Judge every commit against its first parent, each by the config ``config_for`` gives."""
    changes = repo.changes(commits)
    too_large: dict[str, list[Violation]] = {}
    for sha, found in changes.items():
        refused = oversized(sha, found)
        if refused:
            # The rules never see these files (they read as absent), so a refusal does not
            # come with misleading ones about a file that seems deleted.
            too_large[sha] = refused
            skip = {v.file for v in refused}
            changes[sha] = tuple(c for c in found if c.path not in skip)
    repo.prefetch()
    infos = [
        (CommitInfo(c.sha, c.parents, c.committer_email, changes[c.sha]), config_for(c))
        for c in commits
        if changes.get(c.sha)
    ]
    signatures = _verify(repo, [(info, config) for info, config in infos
                                if needs_signature(info)])
    out: list[Violation] = [v for c in commits for v in too_large.get(c.sha, [])]
    for info, config in infos:
        if info.sha in signatures:
            info = replace(info, signature=signatures[info.sha])
        before = repo.snapshot(info.parents[0] if info.parents else None)
        after = repo.snapshot(info.sha)
        out.extend(check_commit(before, after, info, PushContext(config, pusher)))
    return out


def _verify(repo: Repo, pending: list[tuple[CommitInfo, CatalogConfig]],
            ) -> dict[str, SignatureCheck]:
    """Signature checks of the commits that write locks, grouped by the config judging them."""
    if not pending:
        return {}
    from envctl.signing import Verifier  # only pushes that write locks need it

    groups: dict[int, tuple[CatalogConfig, list[tuple[str, str]]]] = {}
    for info, config in pending:
        groups.setdefault(id(config), (config, []))[1].append((info.sha, info.committer_email))
    found: dict[str, SignatureCheck] = {}
    for config, shas in groups.values():
        with Verifier(repo.path, config, scrub=repo.scrub) as verifier:
            found.update(verifier.verify_many(shas))
    return found


def strict_config(branch: str | None) -> CatalogConfig:
    """Used when the config before a push does not parse: default mutable tags, no signers,
    no admins, and the pushed branch protected. A push may then repair catalog.yaml."""
    return CatalogConfig(branch=branch or "main")


def governing_config(repo: Repo, update: RefUpdate) -> CatalogConfig | None:
    """The config a ref update is judged by: the old tip's (the pushed tip's on creation,
    or when the old tip is not a catalog yet: the bootstrap push is trusted to set it up)."""
    found = None
    for rev in (update.old, update.new):
        if rev != ZERO_SHA:
            found = repo.config_at(rev)
            if found is not None:
                break
    if isinstance(found, EnvctlError):
        return strict_config(update.branch)
    return found


def check_update(repo: Repo, update: RefUpdate, *, pusher: str | None = None,
                 protected: bool | None = None) -> list[Violation]:
    """Everything one ``old new ref`` line of a push must satisfy."""
    config = governing_config(repo, update)
    if config is None:
        return []  # neither side is a catalog: not envctl's business
    if protected is None:
        protected = is_protected(update, config)
    if not protected:
        return []  # other branches are not policed; PRs from them are checked by CI
    if update.deleted:
        return check_ref_update(update, config)
    if not update.created:
        update = replace(update, fast_forward=repo.is_ancestor(update.old, update.new))
    refused = check_ref_update(update, config)
    if refused:
        return refused  # a rewrite: judging its commits would only add noise
    # A new protected branch is judged on its whole history: its commits may have come in
    # through an unpoliced branch.
    revs = [update.new] if update.created else [update.new, f"^{update.old}"]
    return judge_commits(repo, repo.commits(revs), lambda _c: config, pusher)


def check_range(repo: str | os.PathLike[str], base: str, head: str, *, subdir: str = "",
                pusher: str | None = None, require: bool = False) -> list[Violation]:
    """What the hook would say if the protected branch moved from ``base`` to ``head``.

    ``require``: raise when neither revision has a catalog (instead of accepting).
    """
    with Repo(repo, subdir=subdir) as r:
        old, new = r.rev(base), r.rev(head)
        config = governing_config(r, RefUpdate("", old, new))
        if config is None:
            if require:
                raise CatalogError(
                    f"no {r.subdir}{CONFIG_FILE} at {base} or {head} in {repo}",
                    rule="not-a-catalog",
                    fix="run in the catalog's repository, or name its folder with --catalog",
                )
            return []
        update = RefUpdate(f"refs/heads/{config.branch}", old, new)
        return check_update(r, update, pusher=pusher, protected=True)


def check_history(repo: str | os.PathLike[str], branch: str | None = None, *,
                  subdir: str = "") -> list[Violation]:
    """Audit every commit of the protected branch after the fact (for servers without hooks).

    Each commit is judged by the config of its first parent (its own for the root), since
    push boundaries are not recorded: a key added in one commit counts from the next one.
    """
    with Repo(repo, subdir=subdir) as r:
        if branch is None:
            head = r.config_at("HEAD")
            branch = head.branch if isinstance(head, CatalogConfig) else "main"
        tip = r.rev(branch)
        commits = r.commits([tip])

        def config_for(commit: Commit) -> CatalogConfig:
            found = r.config_at(commit.parents[0] if commit.parents else commit.sha)
            if found is None:
                found = r.config_at(commit.sha)
            return found if isinstance(found, CatalogConfig) else strict_config(branch)

        return judge_commits(r, commits, config_for)
