"""What a CI run has to do: the tags changed since the last CI commit, plus those left pending.

The *last CI commit* is the newest first-parent commit that touched ``locks/``, carries
an ``Envctl-CI:`` trailer and is signed by an allowed signer (checked as the hook checks
it, against the config of its parent). Every CI commit accounts for every tag pending
at its parent: locked in it, or named in an ``Envctl-Pending:`` trailer. So the work
of a run is

- every tag of an env file changed in ``last CI commit..HEAD`` that needs a resolve:
  an immutable tag without a lock (pending), a rolling tag that is new, changed or
  unlocked;
- every tag named in the last CI commit's ``Envctl-Pending:`` trailers that is still
  pending;
- alias records to (re)publish: the tags whose locks changed in the last CI commit
  or after it, and pointers that moved (publishing is idempotent, so a run after a
  failed publish repairs it).

Cost: one ``rev-list`` to find the commit, one ``diff`` for the changed paths, and
the changed files read at both revisions: proportional to the change, not the catalog.
``--since REV`` replaces the last CI commit as the start of the diff; ``all_tags``
scans the whole catalog (a bootstrap, or recovery when history predates envctl ci).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from envctl import yamlio
from envctl.ci.repo import EMPTY_TREE, CatalogRepo
from envctl.errors import EnvctlError
from envctl.git import BlobReader
from envctl.names import Alias, env_name_from_path, parse_alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.config import CatalogConfig

CI_TRAILER = "Envctl-CI"
PENDING_TRAILER = "Envctl-Pending"
_TRAILER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.+?)\s*$")
#: How many lock-touching commits to examine before giving up on finding a CI commit.
SEARCH_LIMIT = 200
_BATCH = 20

Kind = Literal["immutable", "rolling", "pointer"]
Action = Literal["resolve", "publish"]


@dataclass(frozen=True)
class PlannedTag:
    alias: str
    action: Action
    kind: Kind
    reason: str  # new, changed, pending, unlocked, pointer-moved, locked
    base: str | None = None  # the tag it extends, when that tag is in the plan too

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "action": self.action,
            "kind": self.kind,
            "reason": self.reason,
            "base": self.base,
        }


@dataclass(frozen=True)
class Plan:
    head: str
    base: str | None  # where the diff started (None: the empty tree)
    base_kind: Literal["ci-commit", "since", "none", "all"]
    last_ci_commit: str | None
    tags: tuple[PlannedTag, ...]
    problems: tuple[str, ...] = ()  # files that could not be read; lint reports them

    @property
    def resolve(self) -> list[str]:
        return [t.alias for t in self.tags if t.action == "resolve"]

    @property
    def publish(self) -> list[str]:
        return [t.alias for t in self.tags if t.action == "publish"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "base": self.base,
            "base_kind": self.base_kind,
            "last_ci_commit": self.last_ci_commit,
            "resolve": self.resolve,
            "publish": self.publish,
            "tags": [t.to_dict() for t in self.tags],
            "problems": list(self.problems),
        }

    def matrix(self, max_jobs: int = 16) -> dict[str, Any]:
        """A GitHub Actions matrix: ``{"include": [{"shard": 1, "only": "a:v1 b:v2"}]}``.

        Tags that extend a tag of the same plan share a shard (the base must be
        resolved first, and twice would give two metas). Shards are balanced by count.
        """
        groups = _groups(self.tags)
        shards: list[list[str]] = [[] for _ in range(max(1, min(max_jobs, len(groups))))]
        for group in sorted(groups, key=len, reverse=True):
            min(shards, key=len).extend(group)
        order = {alias: i for i, alias in enumerate(self.resolve)}
        include = [
            {"shard": i + 1, "only": " ".join(sorted(s, key=order.__getitem__)), "count": len(s)}
            for i, s in enumerate(sorted((s for s in shards if s), key=lambda s: order[s[0]]))
        ]
        return {"include": include}


def _groups(tags: Sequence[PlannedTag]) -> list[list[str]]:
    """Connected components of the resolve tags under "extends" (union-find)."""
    parent: dict[str, str] = {t.alias: t.alias for t in tags if t.action == "resolve"}

    def find(alias: str) -> str:
        while parent[alias] != alias:
            parent[alias] = parent[parent[alias]]
            alias = parent[alias]
        return alias

    for tag in tags:
        if tag.action == "resolve" and tag.base in parent:
            parent[find(tag.alias)] = find(tag.base)  # type: ignore[arg-type]
    groups: dict[str, list[str]] = {}
    for alias in parent:
        groups.setdefault(find(alias), []).append(alias)
    return list(groups.values())


# -- trailers and the last CI commit ----------------------------------------------------


def trailers(message: str) -> dict[str, list[str]]:
    """``Key: value`` lines of a commit message's last paragraph."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    found: dict[str, list[str]] = {}
    if not paragraphs:
        return found
    for line in paragraphs[-1].splitlines():
        match = _TRAILER_RE.match(line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def pending_in(message: str) -> list[str]:
    return trailers(message).get(PENDING_TRAILER, [])


def is_ci_message(message: str) -> bool:
    return CI_TRAILER in trailers(message)


def last_ci_commit(repo: CatalogRepo, head: str) -> str | None:
    """The newest first-parent commit of ``head`` that CI made (see the module docstring)."""
    path = repo.path("locks")
    for skip in range(0, SEARCH_LIMIT, _BATCH):
        out = repo.text(
            ["log", "--first-parent", f"--max-count={_BATCH}", f"--skip={skip}",
             "--format=%H%x1f%ce%x1f%P", head, "--", path]
        )
        rows = [line.split("\x1f") for line in out.splitlines() if line]
        for sha, email, parents in rows:
            if _made_by_ci(repo, sha, email, parents.split()):
                return sha
        if len(rows) < _BATCH:
            return None
    return None


def _made_by_ci(repo: CatalogRepo, sha: str, email: str, parents: list[str]) -> bool:
    if not is_ci_message(repo.message(sha)):
        return False
    config = _config_at(repo, parents[0] if parents else sha)
    if config is None or not config.allowed_signers:
        return False  # nobody may write locks: nothing can be a CI commit
    from envctl.signing import Verifier

    with Verifier(repo.top, config) as verifier:
        check = verifier.verify_many([(sha, email)])[sha]
    return check.status == "good" and check.principal in config.signer_keys()


def _config_at(repo: CatalogRepo, rev: str) -> CatalogConfig | None:
    try:
        return repo.catalog(rev).config
    except EnvctlError:
        return None


# -- who added a tag ----------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    """The first commit whose version of an env file declares a tag."""

    commit: str
    author: str  # "Name <email>"
    email: str


def first_declared(
    repo: CatalogRepo, head: str, env_rel: str, wanted: Iterable[str] = ()
) -> dict[str, Added]:
    """For the tags of ``env_rel`` (all, or ``wanted``), the first commit that declared each.

    The same walk as :func:`envctl.resolve.history.tag_added_at` (which gives the tag's
    ``exclude_newer``), so "added by" and "added at" name one commit. It stops as soon as
    every wanted tag is found.
    """
    want = set(wanted)
    out = repo.text(
        ["log", "--reverse", "--format=%H%x1f%an%x1f%ae", head, "--", repo.path(env_rel)]
    )
    found: dict[str, Added] = {}
    reader = BlobReader(repo.top)
    try:
        for line in out.splitlines():
            sha, name, email = line.split("\x1f")
            data = reader.read(f"{sha}:{repo.path(env_rel)}")
            for tag in _declared_tags(data, env_rel):
                found.setdefault(tag, Added(sha, f"{name} <{email}>", email))
            if want and want <= found.keys():
                break
    finally:
        reader.close()
    return found


def _declared_tags(data: bytes | None, path: str) -> list[str]:
    if data is None:
        return []
    try:
        doc = yamlio.load(data, file=path, lines=False)
    except EnvctlError:
        return []  # a broken revision declares nothing
    tags = doc.get("tags") if isinstance(doc, dict) else None
    return [str(t) for t in tags] if isinstance(tags, dict) else []


# -- the plan -----------------------------------------------------------------------------


@dataclass
class _Builder:
    after: Catalog
    before: Catalog | None
    tags: dict[str, PlannedTag] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, tag: PlannedTag) -> None:
        # A resolve beats a publish of the same tag (publishing follows the resolve).
        old = self.tags.get(tag.alias)
        if old is None or (old.action == "publish" and tag.action == "resolve"):
            self.tags[tag.alias] = tag

    def env_file(self, rel: str) -> None:
        """Plan the tags of one changed env file."""
        try:
            name = env_name_from_path(rel)
            if not self.after.has_env(name):
                return  # deleted: nothing to resolve
            env = self.after.env(name)
        except EnvctlError as exc:
            self.problems.append(exc.render())
            return
        old_tags = self._old_tags(name)
        for tag, spec in env.tags.items():
            try:
                self._tag(Alias(name, tag), spec, old_tags.get(tag))
            except EnvctlError as exc:
                self.problems.append(exc.render())

    def _tag(self, alias: Alias, spec: Any, old: Any) -> None:
        from envctl.spec import PointerTag

        if isinstance(spec, PointerTag):
            if old != spec:
                self.add(PlannedTag(str(alias), "publish", "pointer", "pointer-moved"))
            return
        if spec.retired:
            return
        locked = self.after.meta(alias) is not None and self.after.lock_bytes(alias) is not None
        if old is None:
            reason = "new"
        elif old != spec:
            reason = "changed"
        elif not locked:
            reason = "pending"
        else:
            return  # unchanged and locked: a rolling tag's re-resolve is refresh's job
        kind: Kind = "rolling" if self.after.is_mutable(alias.tag) else "immutable"
        if kind == "rolling" or not locked:
            self.add(self._resolve(alias, kind, reason, spec))

    def _old_tags(self, name: Any) -> dict[str, Any]:
        if self.before is None or not self.before.has_env(name):
            return {}
        try:
            return dict(self.before.env(name).tags)
        except EnvctlError:
            return {}  # the old file was broken: every tag counts as changed

    def _resolve(self, alias: Alias, kind: Kind, reason: str, spec: Any) -> PlannedTag:
        base = None
        if spec.extends:
            from envctl.spec import base_alias

            base = str(base_alias(alias, spec.extends))
        return PlannedTag(str(alias), "resolve", kind, reason, base)

    def pending(self, text: str) -> None:
        """A tag named by an ``Envctl-Pending:`` trailer: planned again if still pending."""
        try:
            alias = parse_alias(text)
            info = self.after.info(alias)
        except EnvctlError:
            return  # renamed or removed since: nothing is pending any more
        # A rolling tag is named when its new spec failed to resolve: its old lock stands,
        # so it is tried again (an unchanged solve then simply writes nothing).
        if info.state in ("pending", "rolling"):
            kind: Kind = "rolling" if info.mutable else "immutable"
            self.add(self._resolve(alias, kind, "pending", info.spec))

    def locked(self, lock_rel: str) -> None:
        """A lock or meta written since the last CI commit: publish its alias (idempotent)."""
        from envctl.policy import lock_path_alias

        try:
            alias, _ = lock_path_alias(lock_rel)
            info = self.after.info(alias)
        except EnvctlError:
            return
        if info.meta is not None and info.state in ("frozen", "rolling"):
            kind: Kind = "rolling" if info.mutable else "immutable"
            self.add(PlannedTag(str(alias), "publish", kind, "locked"))


def make_plan(
    repo: CatalogRepo,
    *,
    head: str = "HEAD",
    since: str | None = None,
    all_tags: bool = False,
    carry_pending: bool = True,
) -> Plan:
    """The plan for ``head`` (see the module docstring)."""
    check_full_history(repo)
    head_sha = repo.rev(head)
    last = last_ci_commit(repo, head_sha)
    if all_tags:
        base, kind = None, "all"
    elif since is not None:
        base, kind = repo.rev(since), "since"
    elif last is not None:
        base, kind = last, "ci-commit"
    else:
        base, kind = None, "none"
    builder = _Builder(repo.catalog(head_sha), repo.catalog(base) if base else None)

    for rel in _changed(repo, base or EMPTY_TREE, head_sha, "envs"):
        if rel.endswith(".yaml"):
            builder.env_file(rel)
    if carry_pending and last is not None:
        for text in pending_in(repo.message(last)):
            builder.pending(text)
    # Locks of the last CI commit itself and after it: their aliases are (re)published.
    lock_base = _parent_or_empty(repo, base) if base else EMPTY_TREE
    for rel in _changed(repo, lock_base, head_sha, "locks"):
        if rel.endswith(".meta.yaml"):
            builder.locked(rel)
    return Plan(
        head=head_sha,
        base=base,
        base_kind=kind,  # type: ignore[arg-type]
        last_ci_commit=last,
        tags=tuple(order_by_base(builder.tags.values())),
        problems=tuple(builder.problems),
    )


def check_full_history(repo: CatalogRepo) -> None:
    """Refuse a shallow clone: the last CI commit, who added a tag and when (its
    ``exclude_newer``, hence its req_id) all come from history a shallow clone lacks."""
    if repo.text(["rev-parse", "--is-shallow-repository"]).strip() == "true":
        from envctl.errors import GitError

        raise GitError(
            f"{repo.top} is a shallow clone; envctl ci needs the branch's history",
            file=str(repo.top),
            rule="shallow-clone",
            fix="fetch it all: 'git fetch --unshallow', or actions/checkout with fetch-depth: 0",
        )


def _parent_or_empty(repo: CatalogRepo, rev: str) -> str:
    parents = repo.parents(rev)
    return parents[0] if parents else EMPTY_TREE


def _changed(repo: CatalogRepo, old: str, new: str, folder: str) -> list[str]:
    """Catalog-relative paths under ``folder`` that differ between two revisions."""
    out = repo.text(
        ["diff", "--name-only", "--no-renames", "-z", old, new, "--", repo.path(folder)]
    )
    paths = (repo.rel(p) for p in out.split("\0") if p)
    return sorted(p for p in paths if p)


def order_by_base(tags: Iterable[PlannedTag]) -> list[PlannedTag]:
    """Resolves before publishes; a base before the tags that extend it; otherwise by name."""
    items = sorted(tags, key=lambda t: (t.action != "resolve", t.alias))
    by_alias = {t.alias: t for t in items}
    done: set[str] = set()
    out: list[PlannedTag] = []

    def visit(tag: PlannedTag, trail: tuple[str, ...]) -> None:
        if tag.alias in done or tag.alias in trail:
            return  # a cycle is the resolver's error to report
        if tag.base in by_alias and by_alias[tag.base].action == "resolve":  # type: ignore[index]
            visit(by_alias[tag.base], (*trail, tag.alias))  # type: ignore[index]
        done.add(tag.alias)
        out.append(tag)

    for tag in items:
        visit(tag, ())
    return out


def pending_between(repo: CatalogRepo, old: str, new: str) -> list[str]:
    """Tags that need a resolve because of env changes in ``old..new`` (no trailers)."""
    if old == new:
        return []
    plan = make_plan(repo, head=new, since=old, carry_pending=False)
    return plan.resolve
