"""The commit back: one signed commit of locks and metas on the branch tip, pushed, race-safe.

The commit is built with git plumbing on the *fetched tip* (a temporary index, ``commit-tree
-S``), never in the work tree, so it can be rebuilt on a new tip after a lost race
without touching anything. Before each push it is checked like the hook will check it:

- a lock already committed for an immutable tag is never overwritten (the same bytes
  mean someone else locked it first: nothing to do);
- every lock must still match its spec at the tip (req_ids, base full_ids, channels:
  :mod:`envctl.lockcheck`); a tag whose spec changed meanwhile is left pending;
- then the whole candidate goes through :func:`envctl.check.check_range`, the same code
  path as the pre-receive hook, signature included.

A push that is refused because the branch moved is a lost race: fetch, rebuild, re-check,
retry, a bounded number of times. Any other refusal stops with the server's words.

Signing: ``git -c gpg.format=ssh -c user.signingkey=KEY commit-tree -S``; the committer is
the principal ``catalog.yaml``'s ``allowed_signers`` lists for that key, because the
hook requires the signer to be the committer.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from envctl import __version__
from envctl.ci.plan import CI_TRAILER, PENDING_TRAILER, last_ci_commit, pending_between, pending_in
from envctl.ci.repo import CatalogRepo, remove_if_same
from envctl.ci.results import TagOutcome
from envctl.errors import EnvctlError, GitError, PolicyError
from envctl.names import Alias, parse_alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.config import CatalogConfig
    from envctl.meta import Meta

SIGN_KEY_ENV = "ENVCTL_CI_SIGNING_KEY"
CI_NAME_ENV = "ENVCTL_CI_NAME"
DEFAULT_NAME = "envctl CI"
DEFAULT_ATTEMPTS = 5
BACKOFF = 0.5  # seconds, times the attempt number, plus jitter: racing jobs spread out


# -- who signs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    key: Path
    principal: str  # the committer e-mail the hook expects for this key
    name: str = DEFAULT_NAME

    @property
    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.principal,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.principal,
        }


def _key_body(line: str) -> tuple[str, str] | None:
    parts = line.split()
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def public_key(key: Path) -> str:
    """The public key line of a private key: ``KEY.pub`` when present, else ``ssh-keygen -y``."""
    pub = key.with_name(key.name + ".pub")
    if pub.is_file():
        return pub.read_text(encoding="utf-8").strip()
    try:
        proc = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True,
                              timeout=30, check=False)
    except FileNotFoundError:
        raise EnvctlError("ssh-keygen is not installed, so the CI key cannot be used",
                          rule="signing-key", fix="install OpenSSH (8.2 or newer)") from None
    if proc.returncode != 0:
        raise EnvctlError(
            f"cannot read the signing key {key}: "
            f"{proc.stderr.decode('utf-8', 'replace').strip() or proc.returncode}",
            file=str(key), rule="signing-key",
            fix="give an unencrypted SSH private key (ed25519) readable only by CI (chmod 600)",
        )
    return proc.stdout.decode().strip()


def load_signer(
    config: CatalogConfig, key: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
) -> Signer:
    """The CI signer: ``key`` (``--sign-key``) or ``$ENVCTL_CI_SIGNING_KEY``, whose public key
    must be in ``allowed_signers``; fails before any work when it is not."""
    env = os.environ if environ is None else environ
    text = os.fspath(key) if key is not None else env.get(SIGN_KEY_ENV, "")
    if not text:
        raise EnvctlError(
            "no signing key for the commit back: locks must be committed signed by CI",
            rule="signing-key",
            fix=f"pass --sign-key PATH or set {SIGN_KEY_ENV} to the CI's SSH private key file "
            "(or use --no-commit to resolve and upload only)",
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise EnvctlError(f"the signing key {path} does not exist", file=str(path),
                          rule="signing-key", fix=f"check --sign-key / {SIGN_KEY_ENV}")
    mine = _key_body(public_key(path))
    for signer in config.allowed_signers:
        if _key_body(signer.key) == mine:
            return Signer(path, signer.principal, env.get(CI_NAME_ENV) or DEFAULT_NAME)
    raise EnvctlError(
        f"the signing key {path} is not in catalog.yaml's allowed_signers, so the server "
        "would refuse its commit",
        file="catalog.yaml", rule="unknown-signer",
        fix="add its public key line under allowed_signers (in a push before this run)",
    )


# -- building a commit --------------------------------------------------------------------


def build_tree(repo: CatalogRepo, parent: str, files: Mapping[str, bytes]) -> str:
    """The tree of ``parent`` with ``files`` (catalog-relative) written: a temporary index."""
    with tempfile.TemporaryDirectory(prefix="envctl-ci-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        repo.git(["read-tree", parent], env=env)
        lines = []
        for rel, data in sorted(files.items()):
            blob = repo.git(["hash-object", "-w", "--stdin"], input=data).stdout.decode().strip()
            lines.append(f"100644 {blob}\t{repo.path(rel)}\n")
        repo.git(["update-index", "--index-info"], input="".join(lines).encode(), env=env)
        return repo.git(["write-tree"], env=env).stdout.decode().strip()


def commit_tree(repo: CatalogRepo, tree: str, parent: str, message: str, signer: Signer) -> str:
    proc = repo.git(
        ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signer.key}",
         "commit-tree", tree, "-p", parent, "-S", "-F", "-"],
        input=message.encode("utf-8"), env=signer.env, check=False,
    )
    if proc.returncode != 0:
        raise EnvctlError(
            f"signing the commit with {signer.key} failed: "
            f"{proc.stderr.decode('utf-8', 'replace').strip()}",
            file=str(signer.key), rule="signing-key",
            fix="check the key file (an unencrypted SSH key, chmod 600) and that ssh-keygen "
            "is installed",
        )
    return proc.stdout.decode().strip()


@dataclass(frozen=True)
class Dropped:
    alias: str
    reason: str
    pending: bool  # True: still needs a resolve (listed in Envctl-Pending)


@dataclass(frozen=True)
class Candidate:
    parent: str
    commit: str | None  # None: nothing to commit
    kept: tuple[TagOutcome, ...]
    dropped: tuple[Dropped, ...]
    pending: dict[str, str]  # alias -> why it is still pending
    message: str = ""


def _same_ids(a: Meta, b: Meta) -> bool:
    return a.env_ids() == b.env_ids()


def screen(catalog: Catalog, outcomes: Sequence[TagOutcome]) -> tuple[list[TagOutcome],
                                                                       list[Dropped]]:
    """Which resolved outcomes may be committed on the tree ``catalog`` reads."""
    from envctl.lockcheck import LockInput, check_lock_content

    kept: list[TagOutcome] = []
    dropped: list[Dropped] = []
    for outcome in outcomes:
        if outcome.status != "resolved":
            continue
        alias = parse_alias(outcome.alias)
        meta = outcome.meta()
        try:
            info = catalog.info(alias)
        except EnvctlError:
            dropped.append(Dropped(outcome.alias, "the tag is gone from the branch", False))
            continue
        if info.state in ("pointer", "retired"):
            dropped.append(Dropped(outcome.alias, f"the tag is {info.state} now", False))
            continue
        committed = catalog.lock_bytes(alias)
        if not info.mutable and info.meta is not None and committed is not None:
            if committed == outcome.lock_bytes():
                dropped.append(Dropped(outcome.alias, "already locked with the same lock", False))
            else:
                dropped.append(Dropped(outcome.alias, "already locked with another lock; a "
                                       "frozen lock is never overwritten", False))
            continue
        if info.mutable and info.meta is not None and _same_ids(info.meta, meta):
            dropped.append(Dropped(outcome.alias, "the branch has a lock with the same ids",
                                   False))
            continue
        kept.append(outcome)

    # Specs may have changed at the tip since the resolve. Checking one tag can depend on
    # another (a base's full_id), so repeat until nothing more is dropped.
    while True:
        metas = {parse_alias(o.alias): o.meta() for o in kept}

        def base_meta(a: Alias, metas: dict[Alias, Meta] = metas) -> Meta | None:
            return metas.get(a) or catalog.meta(a)

        bad: dict[str, str] = {}
        for outcome in kept:
            alias = parse_alias(outcome.alias)
            try:
                spec = catalog.effective(alias)
                errors: list[EnvctlError] = check_lock_content(LockInput(
                    alias=alias, meta=metas[alias], lock=outcome.lock_bytes(), spec=spec,
                    tree_config=catalog.config, push_config=catalog.config, base_meta=base_meta,
                ))
            except EnvctlError as exc:
                errors = [exc]
            if errors:
                bad[outcome.alias] = "its spec changed while it was resolved: " + errors[0].message
        if not bad:
            return kept, dropped
        kept = [o for o in kept if o.alias not in bad]
        dropped.extend(Dropped(a, why, True) for a, why in bad.items())


def still_pending(catalog: Catalog, aliases: Iterable[str], failed: Iterable[str] = (),
                  ) -> list[str]:
    """The aliases that still need a resolve on the tree ``catalog`` reads.

    An immutable tag without a lock; a rolling tag without one, or one in ``failed`` (its
    resolve failed in this run: its old lock stands, but its new spec is not locked).
    """
    failed = set(failed)
    out = []
    for text in dict.fromkeys(aliases):
        try:
            info = catalog.info(parse_alias(text))
        except EnvctlError:
            continue
        if info.state == "pending" or (
            info.state == "rolling" and (info.meta is None or text in failed)
        ):
            out.append(text)
    return out


def prepare(
    repo: CatalogRepo,
    tip: str,
    outcomes: Sequence[TagOutcome],
    *,
    signer: Signer,
    pending: Mapping[str, str],
    planned_head: str,
    subject: str = "lock",
) -> Candidate:
    """The signed commit to push on ``tip``, or a candidate without one when there is nothing
    to commit. ``pending``: tags this run leaves pending (alias -> why)."""
    from envctl.check import check_range

    catalog = repo.catalog(tip)
    kept, dropped = screen(catalog, outcomes)
    # Why each tag is still pending: this run's failures and leftovers first...
    why = dict(pending)
    for item in dropped:
        if item.pending:
            why.setdefault(item.alias, item.reason)
    if planned_head != tip and repo.is_ancestor(planned_head, tip):
        for text in pending_between(repo, planned_head, tip):
            why.setdefault(text, "changed on the branch while this run was resolving")
    fresh = set(why)
    # ...then what the last CI commit still named (the invariant carries it forward).
    last = last_ci_commit(repo, tip)
    if last is not None:
        for text in pending_in(repo.message(last)):
            why.setdefault(text, f"still pending since {last[:12]}")
    for _ in range(len(kept) + 1):
        locked = {o.alias for o in kept}
        left = {a: why[a] for a in still_pending(catalog, why, fresh) if a not in locked}
        if not kept:
            return Candidate(tip, None, (), tuple(dropped), left)
        files = {rel: data for o in kept for rel, data in o.files.items()}
        message = commit_message(kept, left, subject=subject)
        commit = commit_tree(repo, build_tree(repo, tip, files), tip, message, signer)
        violations = check_range(repo.top, tip, commit, subdir=repo.subdir.rstrip("/"))
        if not violations:
            return Candidate(tip, commit, tuple(kept), tuple(dropped), left, message)
        offenders = _offenders(violations)
        if not offenders or not offenders & locked:
            raise PolicyError(
                "the commit back would be refused: " + violations[0].render(),
                rule=violations[0].rule,
                fix="this is a bug in envctl ci or a server rule CI cannot meet; report it",
            )
        for alias in offenders & locked:
            reason = next(v.message for v in violations if _alias_of(v.file) == alias)
            dropped.append(Dropped(alias, f"refused by the catalog's rules: {reason}", True))
            why.setdefault(alias, f"refused by the catalog's rules: {reason}")
            fresh.add(alias)
        kept = [o for o in kept if o.alias not in offenders]
    raise AssertionError("unreachable")  # pragma: no cover


def _alias_of(path: str | None) -> str | None:
    from envctl.policy import lock_path_alias

    if not path or not path.startswith("locks/"):
        return None
    try:
        return str(lock_path_alias(path)[0])
    except EnvctlError:
        return None


def _offenders(violations: Sequence[EnvctlError]) -> set[str]:
    found = {_alias_of(v.file) for v in violations}
    return set() if None in found else {a for a in found if a}


def commit_message(kept: Sequence[TagOutcome], pending: Mapping[str, str], *,
                   subject: str = "lock") -> str:
    """``name:tag → req_id:full_id`` per platform, who added each tag, then trailers."""
    names = [o.alias for o in kept]
    head = (f"envctl ci: {subject} {', '.join(names)}" if len(names) <= 3
            else f"envctl ci: {subject} {len(names)} environments")
    lines = [head, ""]
    for outcome in kept:
        for ids in outcome.platforms:
            lines.append(f"{outcome.alias} → {ids.req_id}:{ids.full_id} ({ids.platform})")
        if outcome.resolved_by:
            added = f" (added in {outcome.added_in[:12]})" if outcome.added_in else ""
            lines.append(f"  resolved by {outcome.resolved_by}{added}")
    if pending:
        lines += ["", "Still pending:"]
        lines += [f"  {alias}: {' '.join(why.split())}" for alias, why in sorted(pending.items())]
    lines += ["", f"{CI_TRAILER}: {__version__}"]
    lines += [f"{PENDING_TRAILER}: {alias}" for alias in sorted(pending)]
    return "\n".join(lines) + "\n"


# -- pushing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    status: Literal["landed", "race", "refused"]
    tip: str  # the branch tip after the attempt
    detail: str = ""


def push(repo: CatalogRepo, remote: str, branch: str, commit: str, parent: str) -> PushResult:
    """Push ``commit`` (whose parent is ``parent``) to ``branch``; classify any refusal."""
    proc = repo.git(["push", "--porcelain", remote, f"{commit}:refs/heads/{branch}"],
                    check=False, timeout=600)
    if proc.returncode == 0:
        return PushResult("landed", commit)
    tip = repo.fetch(remote, branch)
    if tip == commit:
        return PushResult("landed", commit)  # it landed; only the answer was lost
    text = proc.stderr.decode("utf-8", "replace") + proc.stdout.decode("utf-8", "replace")
    if tip != parent:
        return PushResult("race", tip, "the branch moved")
    said = [line.removeprefix("remote: ").strip() for line in text.splitlines()
            if line.startswith("remote:") and line.strip() != "remote:"]
    rejected = [line for line in text.splitlines() if line.startswith("!")]
    return PushResult("refused", tip, "; ".join(said or rejected) or text.strip())


@dataclass
class Landing:
    candidate: Candidate | None = None
    landed: bool = False
    attempts: int = 0
    races: list[str] = field(default_factory=list)


BeforePush = Callable[[int, Candidate], None]


def refused_error(result: PushResult, branch: str) -> GitError:
    return GitError(
        f"the server refused the commit back to {branch}: {result.detail}",
        rule="push-refused",
        fix="nothing was committed; fix what the server says (see the CI report) and rerun",
    )


def land(
    repo: CatalogRepo,
    outcomes: Sequence[TagOutcome],
    *,
    remote: str,
    branch: str,
    signer: Signer,
    pending: Mapping[str, str],
    planned_head: str,
    max_attempts: int = DEFAULT_ATTEMPTS,
    before_push: BeforePush | None = None,
    subject: str = "lock",
) -> Landing:
    """Commit ``outcomes`` on the remote branch: fetch, prepare, push, and on a lost race do
    it again on the new tip, at most ``max_attempts`` times (``envctl ci commit``)."""
    landing = Landing()
    for attempt in range(1, max_attempts + 1):
        landing.attempts = attempt
        tip = repo.fetch(remote, branch)
        candidate = prepare(repo, tip, outcomes, signer=signer, pending=pending,
                            planned_head=planned_head, subject=subject)
        landing.candidate = candidate
        if candidate.commit is None:
            return landing
        if before_push is not None:
            before_push(attempt, candidate)
        result = push(repo, remote, branch, candidate.commit, tip)
        if result.status == "landed":
            landing.landed = True
            return landing
        if result.status == "refused":
            raise refused_error(result, branch)
        landing.races.append(result.tip)
        backoff(attempt)
    raise lost_races(branch, max_attempts)


def lost_races(branch: str, attempts: int) -> GitError:
    return GitError(
        f"{branch} kept moving: the commit back lost the race {attempts} times",
        rule="push-race",
        fix="nothing was committed and every upload is kept; rerun the job (a concurrency "
        "group on the workflow keeps CI runs from racing each other)",
    )


def backoff(attempt: int) -> None:
    time.sleep(BACKOFF * attempt * (0.5 + random.random()))


# -- the work tree --------------------------------------------------------------------------


def sync_worktree(repo: CatalogRepo, target: str, written: Mapping[str, bytes]) -> bool:
    """Move the checkout to ``target`` (a fast-forward), first removing the lock files this
    run wrote (``target`` has them committed, or they are stale). False when the checkout
    cannot fast-forward (local commits or edits in the way)."""
    for rel, data in written.items():
        remove_if_same(repo.root / rel, data)
    head = repo.rev("HEAD")
    if head == target:
        return True
    if not repo.is_ancestor(head, target):
        return False
    # Lock files an earlier job left untracked (a --no-commit shard, a failed run) that the
    # target commits byte for byte would block the fast-forward; they are that commit's.
    untracked = repo.text(["ls-files", "-z", "--others", "--", repo.path("locks")])
    source = repo.source(target)
    for git_path in filter(None, untracked.split("\0")):
        rel = repo.rel(git_path)
        committed = source.read(rel) if rel else None
        if rel and committed is not None:
            remove_if_same(repo.root / rel, committed)
    proc = repo.git(["merge", "--ff-only", "--quiet", target], check=False)
    return proc.returncode == 0
