"""The catalog's immutability and safety rules, as pure functions over two revisions.

Nothing here runs git or touches the file system: the caller (``envctl.check``, which the
pre-receive hook and ``envctl check`` both use) hands in

- a :class:`Snapshot` of the tree before and after one commit (read on demand, so the cost
  follows the files a commit touches, not the size of the catalog),
- the commit's changed paths, committer and signature check (:class:`CommitInfo`),
- a :class:`PushContext`: the catalog config read from the revision *before the push* (so a
  push can never loosen the rules it is judged by) and the pusher's identity, if known,

and gets back a list of :class:`Violation` (an :class:`~envctl.errors.PolicyError` that
names the file, the tag, the rule and the fix). An empty list means accepted.

Decisions that are not obvious from DESIGN.md (the README's "Rules" section repeats them):

- A tag is *frozen* when it is immutable by the push's config and both its lock and its meta
  are committed. Its spec may only gain, change or lose ``retired:``; its lock and meta never
  change. Any committed lock or meta of an immutable tag is write-once.
- Because mutability is read from the config before the push, a push cannot unfreeze a tag by
  editing ``mutable_tags``; and because envctl has nowhere to remember that a tag *was*
  immutable, a ``catalog.yaml`` change whose patterns would make a frozen tag mutable is itself
  refused (``immutable-stays-immutable``), so no later push can edit that tag either.
- Paths allowed besides ``envs/`` and ``locks/``: ``catalog.yaml``, ``README*``,
  ``LICENSE*``, ``CODEOWNERS``, ``.gitignore``, ``.gitattributes``, ``.gitlab-ci.yml``,
  anything under ``docs/``, ``.github/`` and ``.gitlab/``, and ``.gitkeep`` files in
  ``envs/`` and ``locks/`` (``envctl init`` writes them). Deleting any path is allowed
  (subject to the frozen rules). Symlinks and submodules are refused everywhere.
- A new path segment (namespace, environment) may not collide with an existing sibling once
  case and ``-``/``_``/``.`` are folded (``team-a/`` next to ``team_a/`` is refused too, not
  only identical full names); a new tag may not collide with another tag of its env.
- Owners: only the environment file is owned; lock and meta files are governed by the signing
  rule instead (CI writes them). A change to an environment needs the pusher in its owners as
  of before the commit (for a new env: as written), or in the config's admins. An env with no
  owners is open to everyone. A change to ``catalog.yaml`` needs an admin when admins are
  configured. Owners are compared without a leading ``@`` and case-insensitively; a team
  (``@org/team``) cannot be expanded on a server and only matches a pusher of that exact name.
- Lock signatures: the signer's principal must equal the committer's e-mail (case-insensitive)
  and its key must be the one the push's config lists for that principal.
- Requirements: a requirement a commit adds to a tag must parse (conda match spec, PEP 508)
  and a ``channel::pkg`` or ``channels:`` entry must name a channel of the commit's
  ``catalog.yaml`` (``invalid-requirement``, ``unknown-channel``), as ``envctl lint`` checks;
  otherwise CI would fail on the tag at every run. Only what a tag gains is checked, and
  common shapes (``numpy``, ``python=3.11``, ``numpy >=1.26,<2``, ``rich==13.7``) are
  recognised by a strict pattern, so rattler's parser (~40 ms to import) loads only for a
  push that adds an unusual requirement.
- The commit in a refusal is the commit that made the refused change ("refused commit"),
  whatever else the message names.
- Lock content (:mod:`envctl.lockcheck`): ids recomputed and compared; conda packages from
  the tag's channels as the push's config maps them; PyPI packages from the origin (scheme
  and host) of the catalog's ``pypi_index`` or the tag's ``pypi_options``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from envctl import yamlio
from envctl.config import CONFIG_FILE, CatalogConfig, parse_config
from envctl.errors import EnvctlError, NotFoundError, PolicyError
from envctl.names import (
    LOCK_FILE_SUFFIX,
    META_FILE_SUFFIX,
    Alias,
    EnvName,
    canonical_key,
    env_name_from_path,
    is_valid_tag,
)

ZERO_SHA = "0" * 40
ENVS = "envs/"
LOCKS = "locks/"

#: Top-level files a catalog may hold besides ``catalog.yaml`` (exact names).
ALLOWED_FILES = frozenset(
    {CONFIG_FILE, "CODEOWNERS", ".gitignore", ".gitattributes", ".gitlab-ci.yml"}
)
#: Top-level file name prefixes (``README.md``, ``LICENSE``...).
ALLOWED_FILE_PREFIXES = ("README", "LICENSE")
#: Folders whose contents are free (documentation, CI workflows, GitLab's CODEOWNERS).
ALLOWED_DIRS = ("docs/", ".github/", ".gitlab/")
#: The empty file that keeps an empty envs/ or locks/ folder in git.
KEEP_FILE = ".gitkeep"
#: Size limit for files that are not YAML the catalog reads (docs, workflows).
MAX_OTHER_BYTES = 5_000_000

_SYMLINK = "120000"
_GITLINK = "160000"
_TREE = "040000"
_VERSION_TAG = re.compile(r"v(\d+)")


# -- what the caller hands in -----------------------------------------------------------


class Snapshot(Protocol):
    """One revision of the catalog tree, read on demand. Paths are relative to the catalog."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when there is no regular file at ``path``."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Names directly inside the folder ``path`` (files and folders), [] if none."""
        ...

    def paths(self, prefix: str) -> list[str]:
        """Every file path under the folder ``prefix``."""
        ...


class MemorySnapshot:
    """A snapshot held in a dict: for tests and for callers that already have the files."""

    def __init__(self, files: Mapping[str, bytes | str] | None = None) -> None:
        self.files = {
            path: data.encode("utf-8") if isinstance(data, str) else data
            for path, data in (files or {}).items()
        }

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/" if path.strip("/") else ""
        return sorted(
            {p[len(prefix) :].split("/", 1)[0] for p in self.files if p.startswith(prefix)}
        )

    def paths(self, prefix: str) -> list[str]:
        prefix = prefix.rstrip("/") + "/"
        return sorted(p for p in self.files if p.startswith(prefix))


@dataclass(frozen=True)
class FileChange:
    """One path a commit changed against its (first) parent, as ``git diff-tree --raw`` says."""

    path: str
    status: str  # A (added), M (modified), D (deleted), T (type changed)
    old_mode: str = "100644"
    new_mode: str = "100644"
    size: int | None = None  # size of the new blob, when the caller knows it
    inherited: bool = False  # a merge took this content unchanged from another parent

    @property
    def deleted(self) -> bool:
        return self.status == "D"


SignatureStatus = Literal["good", "none", "bad", "unknown-key"]


@dataclass(frozen=True)
class SignatureCheck:
    """What ``envctl.signing`` found: git verified the signature against the allowed signers."""

    status: SignatureStatus
    principal: str | None = None
    fingerprint: str | None = None  # "SHA256:..." of the signing key
    detail: str = ""


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    committer_email: str
    changes: tuple[FileChange, ...]
    signature: SignatureCheck | None = None  # None: not checked (the commit writes no lock)


@dataclass(frozen=True)
class RefUpdate:
    """One ``old new ref`` line of a push; ``fast_forward`` is whether old is an ancestor."""

    ref: str
    old: str
    new: str
    fast_forward: bool = True

    @property
    def created(self) -> bool:
        return self.old == ZERO_SHA

    @property
    def deleted(self) -> bool:
        return self.new == ZERO_SHA

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/") :] if self.ref.startswith("refs/heads/") else None


@dataclass(frozen=True)
class PushContext:
    """What a whole push is judged by: the config before it, and who pushes (if known)."""

    config: CatalogConfig
    pusher: str | None = None


class Violation(PolicyError):
    """A refused change. ``commit`` names the commit that made it, when there is one."""

    def __init__(self, message: str, *, commit: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.commit = commit

    def render(self) -> str:
        """``file [tag]: message (refused commit abc) [rule] — fix``: the base format plus the
        commit that made the change (not, say, the commit that locked a frozen tag)."""
        where = str(self.location)
        message = self.message + (f" (refused commit {self.commit[:12]})" if self.commit else "")
        text = f"{where}: {message}" if where else message
        text += f" [{self.rule}]"
        if self.fix:
            text += f" — {self.fix}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "commit": self.commit}


def violation_from(exc: EnvctlError, *, commit: str | None = None) -> Violation:
    """Keep another error's file, line, tag, rule and fix, as a policy refusal."""
    return Violation(
        exc.message,
        commit=commit,
        file=exc.file,
        line=exc.line,
        tag=exc.tag,
        rule=exc.rule,
        fix=exc.fix,
    )


# -- the protected branch ------------------------------------------------------------------


def is_protected(update: RefUpdate, config: CatalogConfig) -> bool:
    return update.branch is not None and update.branch == config.branch


def check_ref_update(update: RefUpdate, config: CatalogConfig) -> list[Violation]:
    """No deletion, force push or other history rewrite of the protected branch."""
    if not is_protected(update, config):
        return []
    branch = config.branch
    if update.deleted:
        return [
            Violation(
                f"deleting the protected branch {branch} is not allowed",
                rule="branch-deletion",
                fix="keep the branch; catalog history is permanent",
            )
        ]
    if not update.created and not update.fast_forward:
        return [
            Violation(
                f"this push rewrites the history of the protected branch {branch} "
                f"({update.old[:12]} is not an ancestor of {update.new[:12]})",
                rule="force-push",
                fix=f"fetch, rebase your commits onto origin/{branch} "
                "(git pull --rebase) and push without --force",
            )
        ]
    return []


# -- one commit ------------------------------------------------------------------------------


def check_commit(
    before: Snapshot, after: Snapshot, commit: CommitInfo, ctx: PushContext
) -> list[Violation]:
    """Every rule that one commit (``before`` is its first parent's tree) must satisfy."""
    judge = _CommitJudge(before, after, commit, ctx)
    return judge.run()


def needs_signature(commit: CommitInfo) -> bool:
    """Whether the commit writes a lock or meta file (and so must be signed by CI)."""
    return bool(_written_locks(commit.changes))


def lock_path_alias(path: str) -> tuple[Alias, Literal["lock", "meta"]]:
    """``locks/a/b/v1.conda-lock.yml`` -> (a/b:v1, "lock"). Raises Violation when malformed."""
    shape = f"lock files are locks/<env>/<tag>{LOCK_FILE_SUFFIX} or <tag>{META_FILE_SUFFIX}"
    parts = path[len(LOCKS) :].split("/") if path.startswith(LOCKS) else []
    if len(parts) < 2:
        raise Violation(f"{path} is not where envctl keeps locks: {shape}", file=path,
                        rule="invalid-name", fix="remove it; CI writes lock files")
    last = parts[-1]
    kind: Literal["lock", "meta"]
    if last.endswith(LOCK_FILE_SUFFIX):
        tag, kind = last[: -len(LOCK_FILE_SUFFIX)], "lock"
    elif last.endswith(META_FILE_SUFFIX):
        tag, kind = last[: -len(META_FILE_SUFFIX)], "meta"
    else:
        raise Violation(f"{path} is not a lock or meta file: {shape}", file=path,
                        rule="invalid-name", fix="remove it; CI writes lock files")
    if not is_valid_tag(tag):
        raise Violation(f"{path} does not name a valid tag ({tag!r})", file=path,
                        rule="invalid-name", fix="remove it; CI writes lock files")
    try:
        name = EnvName(tuple(parts[:-1]))
    except EnvctlError as exc:
        raise Violation(f"{path} does not name a valid environment: {exc.message}", file=path,
                        rule="invalid-name", fix="remove it; CI writes lock files") from None
    return Alias(name, tag), kind


def _written_locks(changes: Iterable[FileChange]) -> list[FileChange]:
    return [
        c for c in changes
        if c.path.startswith(LOCKS) and not c.deleted and not c.inherited
        and not c.path.endswith("/" + KEEP_FILE)
    ]


def next_tag(tags: Iterable[str]) -> str:
    """The tag to suggest instead of editing a frozen one: one past the highest ``vN``."""
    numbers = [int(m.group(1)) for t in tags if (m := _VERSION_TAG.fullmatch(t))]
    return f"v{max(numbers) + 1}" if numbers else "v1"


def key_fingerprint(key_line: str) -> str | None:
    """``SHA256:...`` of an SSH public key line, as ssh-keygen prints it."""
    try:
        blob = base64.b64decode(key_line.split()[1], validate=True)
    except (IndexError, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _shell_quote(path: str) -> str:
    """A path as a shell word (envctl's paths rarely need quoting; never break the command)."""
    if re.fullmatch(r"[A-Za-z0-9_./@%+=:,-]+", path):
        return path
    return "'" + path.replace("'", "'\\''") + "'"


def _same_identity(a: str, b: str) -> bool:
    return a.strip().lstrip("@").casefold() == b.strip().lstrip("@").casefold()


class _Revision:
    """Parsed files of one snapshot, each read and parsed at most once."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._raw: dict[str, Any] = {}
        self._errors: dict[str, EnvctlError] = {}
        self._envs: dict[EnvName, Any] = {}

    def has(self, path: str) -> bool:
        return self.read(path) is not None

    def read(self, path: str) -> bytes | None:
        key = "bytes:" + path
        if key not in self._raw:
            self._raw[key] = self.snap.read(path)
        return self._raw[key]

    def yaml(self, path: str, max_bytes: int = yamlio.MAX_BYTES) -> Any:
        """The file's YAML, None when missing; raises the loader's YamlError."""
        if path in self._errors:
            raise self._errors[path]
        if path not in self._raw:
            data = self.read(path)
            try:
                self._raw[path] = None if data is None else yamlio.load(
                    data, file=path, max_bytes=max_bytes
                )
            except EnvctlError as exc:
                self._errors[path] = exc
                raise
        return self._raw[path]

    def raw_tags(self, name: EnvName) -> dict[str, Any] | None:
        """The ``tags:`` mapping as written, without the schema (robust to old files)."""
        try:
            data = self.yaml(str(name.env_file))
        except EnvctlError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("tags"), dict):
            return None
        return data["tags"]

    def env(self, name: EnvName) -> Any:
        """The parsed EnvFile, None when missing; raises on invalid files."""
        from envctl.spec import parse_env_file

        if name not in self._envs:
            path = str(name.env_file)
            data = self.yaml(path)
            self._envs[name] = None if data is None else parse_env_file(data, file=path)
        return self._envs[name]

    def lookup(self, alias: Alias) -> Any:
        """``spec.TagLookup`` without the catalog-wide suggestions Catalog.tag would list."""
        env = self.env(alias.name)
        if env is None or alias.tag not in env.tags:
            raise NotFoundError(
                f"{alias} does not exist", file=str(alias.name.env_file), tag=alias.tag,
                rule="extends-missing", fix="extend a tag that exists",
            )
        return env.tags[alias.tag]

    def meta(self, alias: Alias) -> Any:
        from envctl.meta import load_meta

        path = str(alias.meta_path)
        data = self.read(path)
        return None if data is None else load_meta(data, file=path)

    def config(self) -> CatalogConfig | None:
        data = self.yaml(CONFIG_FILE)
        return None if data is None else parse_config(data)


@dataclass
class _CommitJudge:
    before_snap: Snapshot
    after_snap: Snapshot
    commit: CommitInfo
    ctx: PushContext
    out: list[Violation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.before = _Revision(self.before_snap)
        self.after = _Revision(self.after_snap)
        self.config = self.ctx.config
        # Looked up once per environment and once per folder: a push of 10,000 new
        # environments must not compare every path with every other one.
        self.changed_paths = {c.path for c in self.commit.changes}
        self.sibling_keys: dict[str, dict[str, list[str]]] = {}

    # -- helpers ---------------------------------------------------------------------------

    def refuse(self, message: str, **kwargs: Any) -> None:
        self.out.append(Violation(message, commit=self.commit.sha or None, **kwargs))

    def refuse_error(self, exc: EnvctlError) -> None:
        from envctl.errors import MultipleErrors

        errors = exc.errors if isinstance(exc, MultipleErrors) else [exc]
        for error in errors:
            self.out.append(violation_from(error, commit=self.commit.sha or None))

    def immutable(self, tag: str) -> bool:
        return not self.config.is_mutable(tag)

    def frozen_before(self, alias: Alias) -> bool:
        return (
            self.immutable(alias.tag)
            and self.before.has(str(alias.lock_path))
            and self.before.has(str(alias.meta_path))
        )

    # -- the rules -------------------------------------------------------------------------

    def run(self) -> list[Violation]:
        envs: dict[EnvName, None] = {}  # touched environments, in path order
        written: dict[Alias, None] = {}  # aliases whose lock or meta was added or changed
        frozen: set[Alias] = set()
        config_changed = False
        for change in self.commit.changes:
            kind = self.check_path(change)
            if kind == "config":
                config_changed = True
            elif isinstance(kind, EnvName):
                envs[kind] = None
            elif isinstance(kind, Alias):
                envs[kind.name] = None
                if self.check_frozen_lock(kind, change):
                    frozen.add(kind)
                elif not change.deleted:
                    written[kind] = None
        self.check_signature()
        if config_changed:
            self.check_config()
        for name in envs:
            self.check_env(name)
        for alias in written:
            if alias not in frozen:
                self.check_lock(alias)
        return self.out

    def check_frozen_lock(self, alias: Alias, change: FileChange) -> bool:
        """A committed lock or meta of an immutable tag is write-once: no edit, no delete."""
        if not self.immutable(alias.tag) or not self.before.has(change.path):
            return False
        verb = "deleted" if change.deleted else "changed"
        self.refuse(
            f"{change.path} is committed and frozen; it cannot be {verb}",
            file=change.path, tag=alias.tag, rule="frozen-lock",
            fix=f"add a new tag (e.g. {next_tag(self.tags_of(alias.name))}) instead",
        )
        return True

    def check_path(self, change: FileChange) -> str | EnvName | Alias | None:
        """Path-level rules; returns what the path is (config, env, lock alias) or None."""
        path = change.path
        if not change.deleted:
            if change.new_mode == _SYMLINK:
                self.refuse("symlinks are not allowed in a catalog", file=path, rule="symlink",
                            fix="commit the file itself, not a link to it")
                return None
            if change.new_mode in (_GITLINK, _TREE):
                self.refuse("submodules are not allowed in a catalog", file=path,
                            rule="not-a-file", fix="remove the submodule")
                return None
        if path.startswith((ENVS, LOCKS)) and path.rsplit("/", 1)[-1] == KEEP_FILE:
            return None  # git keeps empty folders with it ('envctl init' writes them)
        if path == CONFIG_FILE:
            if change.deleted:
                self.refuse(f"{CONFIG_FILE} cannot be deleted", file=path, rule="config-deleted",
                            fix=f"keep {CONFIG_FILE}; edit it instead")
                return None
            return "config"
        if path.startswith(ENVS):
            try:
                name = env_name_from_path(path)
            except EnvctlError as exc:
                if not change.deleted:
                    self.refuse_error(exc)
                return None
            return name
        if path.startswith(LOCKS):
            try:
                alias, _ = lock_path_alias(path)
            except Violation as exc:
                if not change.deleted:
                    self.refuse_error(exc)
                return None
            return alias
        if change.deleted:
            return None
        if not _allowed_other(path):
            self.refuse(
                f"{path} is outside envs/ and locks/",
                file=path,
                rule="path-not-allowed",
                fix="keep environments in envs/ (docs may go in docs/, README*, .github/)",
            )
        elif change.size is not None and change.size > MAX_OTHER_BYTES:
            self.refuse(f"file is {change.size} bytes, over the {MAX_OTHER_BYTES}-byte limit",
                        file=path, rule="file-too-large", fix="keep large files out of the catalog")
        return None

    def check_signature(self) -> None:
        written = _written_locks(self.commit.changes)
        if not written:
            return
        file = written[0].path
        sig = self.commit.signature
        committer = self.commit.committer_email
        fix = "only CI writes locks: let the resolve job commit them (signed with its key)"
        if sig is None or sig.status == "none":
            paths = " ".join(_shell_quote(c.path) for c in written)
            self.refuse("a commit that writes lock files must be signed by an allowed signer; "
                        "this one is not signed", file=file, rule="unsigned-lock",
                        fix="locks are written by CI; drop them from your commit: "
                        f"git rm --cached {paths} && git commit --amend")
            return
        if sig.status == "bad":
            self.refuse(f"the commit's signature does not verify ({sig.detail or 'bad'})",
                        file=file, rule="bad-signature", fix=fix)
            return
        keys = self.config.signer_keys()
        principal = sig.principal
        if sig.status != "good" or principal is None or principal not in keys:
            self.refuse(
                "the commit is signed by a key that is not in catalog.yaml's allowed_signers "
                f"(as of before this push){f': {sig.fingerprint}' if sig.fingerprint else ''}",
                file=file, rule="unknown-signer",
                fix=fix + "; a new signer must be added by an earlier push",
            )
            return
        if sig.fingerprint is not None and key_fingerprint(keys[principal]) != sig.fingerprint:
            self.refuse(f"the signing key is not the one allowed for {principal}", file=file,
                        rule="unknown-signer", fix=fix)
            return
        if not _same_identity(principal, committer):
            self.refuse(
                f"signed with {principal}'s key but committed as {committer or '(no e-mail)'}; "
                "the signer must be the committer",
                file=file, rule="forged-signer", fix=fix,
            )

    def check_config(self) -> None:
        path = CONFIG_FILE
        if not self.may_administer():
            self.refuse(f"{self.ctx.pusher} is not a catalog admin; only admins may change "
                        f"{CONFIG_FILE}", file=path, rule="not-owner",
                        fix=f"ask one of {', '.join(self.config.admins)} to make this change")
        try:
            new = self.after.config()
        except EnvctlError as exc:
            self.refuse_error(exc)
            return
        if new is None or set(new.mutable_tags) <= set(self.config.mutable_tags):
            return  # no new mutable pattern: nothing can become mutable
        flipped: list[str] = []
        for lock in self.before.snap.paths(LOCKS.rstrip("/")):
            if not lock.endswith(META_FILE_SUFFIX):
                continue
            try:
                alias, _ = lock_path_alias(lock)
            except Violation:
                continue
            if self.frozen_before(alias) and new.is_mutable(alias.tag):
                flipped.append(str(alias))
        if flipped:
            shown = ", ".join(flipped[:5]) + (f" and {len(flipped) - 5} more" if len(flipped) > 5
                                              else "")
            self.refuse(
                f"mutable_tags would make frozen tag(s) mutable: {shown}; a tag that was "
                "immutable stays immutable",
                file=path, rule="immutable-stays-immutable",
                fix="narrow the pattern so it matches no locked immutable tag (e.g. 'dev-*')",
            )

    def may_administer(self) -> bool:
        pusher = self.ctx.pusher
        if not pusher or not self.config.admins:
            return True
        return any(_same_identity(pusher, a) for a in self.config.admins)

    # -- environments ------------------------------------------------------------------------

    def check_env(self, name: EnvName) -> None:
        path = str(name.env_file)
        before_tags = self.before.raw_tags(name) or {}
        existed = self.before.has(path)
        exists = self.after.has(path)
        changed = path in self.changed_paths
        if changed:
            self.check_owner(name, existed)
        after_env = None
        if exists:
            try:
                self.precheck_pointers(name)
                after_env = self.after.env(name)
            except EnvctlError as exc:
                self.refuse_error(exc)
        after_tags = self.after.raw_tags(name) if exists else {}
        # Frozen tags: the only allowed change is retired:.
        all_tags = set(before_tags) | set(after_tags or {})
        for tag in before_tags:
            alias = _alias(name, tag)
            if alias is None or not self.frozen_before(alias):
                continue
            new_tag = next_tag(all_tags)
            if after_tags is None:
                continue  # the file does not parse; that is reported already
            if tag not in after_tags:
                self.refuse(
                    f"frozen tag {alias} cannot be deleted or renamed",
                    file=path, tag=tag, rule="frozen-tag",
                    fix=f"keep it (mark it 'retired: <reason>' if it should not be used) and "
                    f"add tag {new_tag} instead",
                )
            elif _without_retired(before_tags[tag]) != _without_retired(after_tags[tag]):
                self.refuse(
                    f"frozen tag {alias} cannot change: its lock ({alias.lock_path}) is "
                    "committed",
                    file=path, tag=tag, rule="frozen-tag",
                    fix=f"add tag {new_tag} instead (only 'retired:' may change on a frozen tag)",
                )
        if not changed or after_env is None:
            return
        if not existed:
            self.check_name_collision(name)
        self.check_tags(name, after_env, set(before_tags))
        self.check_requirements(name, after_tags or {}, before_tags)

    def check_owner(self, name: EnvName, existed: bool) -> None:
        pusher = self.ctx.pusher
        if not pusher:
            return
        source = self.before if existed else self.after
        try:
            env = source.yaml(str(name.env_file)) or {}
        except EnvctlError:
            env = {}
        owners = env.get("owners") if isinstance(env, dict) else None
        owners = [o for o in owners if isinstance(o, str)] if isinstance(owners, list) else []
        if not owners:
            return
        allowed = [*owners, *self.config.admins]
        if any(_same_identity(pusher, who) for who in allowed):
            return
        self.refuse(
            f"{pusher} is not an owner of {name} (owners: {', '.join(owners)})",
            file=str(name.env_file), rule="not-owner",
            fix=f"ask an owner ({', '.join(owners)}) or a catalog admin to push this change",
        )

    def precheck_pointers(self, name: EnvName) -> None:
        """A pointer at another env's tag would fail the schema; say what is wrong instead."""
        for tag, spec in (self.after.raw_tags(name) or {}).items():
            target = spec.get("points_to") if isinstance(spec, dict) else None
            if isinstance(target, str) and (":" in target or "/" in target):
                raise Violation(
                    f"{name}:{tag} points to {target}, another environment; a pointer names a "
                    "tag of its own environment",
                    file=str(name.env_file), tag=tag, rule="pointer-other-env",
                    fix="point to a tag of this environment, or use 'extends:' for another env",
                )

    def check_tags(self, name: EnvName, env: Any, before_tags: set[str]) -> None:
        from envctl.spec import PointerTag

        path = str(name.env_file)
        keys: dict[str, list[str]] = {}
        for tag in env.tags:
            keys.setdefault(canonical_key(tag), []).append(tag)
        for tag, spec in env.tags.items():
            others = [t for t in keys[canonical_key(tag)] if t != tag]
            if tag not in before_tags and others:
                self.refuse(
                    f"tag {tag} collides with tag {others[0]} of {name} ('-', '_' and '.' "
                    "count as the same)", file=path, tag=tag, rule="name-collision",
                    fix=f"use {others[0]}, or pick a clearly different tag",
                )
            if isinstance(spec, PointerTag):
                self.check_pointer(name, tag, spec.points_to, env)

    def check_pointer(self, name: EnvName, tag: str, target: str, env: Any) -> None:
        from envctl.spec import PointerTag

        path = str(name.env_file)
        if self.immutable(tag):
            self.refuse(
                f"{name}:{tag} is a pointer but {tag} is an immutable tag",
                file=path, tag=tag, rule="pointer-immutable",
                fix="use a mutable tag (see mutable_tags in catalog.yaml) for pointers",
            )
        if target not in env.tags:
            self.refuse(
                f"{name}:{tag} points to {target}, which does not exist",
                file=path, tag=tag, rule="pointer-missing",
                fix=f"point to one of: {', '.join(t for t in env.tags if t != tag)}",
            )
        elif isinstance(env.tags[target], PointerTag) or not self.immutable(target):
            self.refuse(
                f"{name}:{tag} points to {target}, a mutable tag; a pointer names an immutable "
                "tag (no chains)", file=path, tag=tag, rule="pointer-to-mutable",
                fix="point to an immutable tag such as "
                + (next((t for t in env.tags if self.immutable(t)), "v1")),
            )

    def check_requirements(
        self, name: EnvName, after_tags: Mapping[str, Any], before_tags: Mapping[str, Any]
    ) -> None:
        """What a commit adds to a tag must be resolvable: requirements that parse, channels
        catalog.yaml declares (``envctl lint`` checks the same). Otherwise the push would be
        accepted and CI would fail on it at every run.

        Only the requirements and channels a tag gains are checked, and the common shapes
        are recognised without the parsers (:func:`surely_valid`): rattler's costs ~40 ms to
        import, which only a push adding an unusual requirement pays.
        """
        path = str(name.env_file)
        config = self.tree_config()
        declared = tuple(config.channels)
        for tag, spec in after_tags.items():
            alias = _alias(name, tag)
            if alias is None or not isinstance(spec, dict) or "points_to" in spec:
                continue
            if self.frozen_before(alias):
                continue  # refused as frozen-tag already
            old = before_tags.get(tag)
            old_spec = old if isinstance(old, dict) and "points_to" not in old else {}
            had = {(kind, text) for kind, text, _ in _requirements(old_spec)}
            for kind, text, line in _requirements(spec):
                if (kind, text) in had:
                    continue
                problem = _requirement_problem(kind, text, declared)
                if problem is not None:
                    message, rule, fix = problem
                    self.refuse(message, file=path, line=line, tag=tag, rule=rule, fix=fix)
            old_channels = old_spec.get("channels") if isinstance(old_spec, dict) else None
            channels = spec.get("channels")
            if isinstance(channels, list) and channels != old_channels:
                lines = getattr(channels, "item_lines", [])
                for i, channel in enumerate(channels):
                    if isinstance(channel, str) and channel not in declared:
                        self.refuse(
                            f"tag {tag} uses channel {channel!r}, which catalog.yaml does not "
                            "declare", file=path, line=lines[i] if i < len(lines) else None,
                            tag=tag, rule="unknown-channel",
                            fix=f"declare it under 'channels:' in {CONFIG_FILE} or use one of: "
                            f"{', '.join(declared) or '(none declared)'}",
                        )

    def check_name_collision(self, name: EnvName) -> None:
        parent = ENVS.rstrip("/")
        for segment in name.segments:
            for sibling in self.siblings(parent).get(canonical_key(segment), ()):
                stem = sibling[: -len(".yaml")] if sibling.endswith(".yaml") else sibling
                if stem != segment:
                    self.refuse(
                        f"{name} collides with {parent}/{sibling} ('-', '_' and '.' count as the "
                        "same, and case is ignored)",
                        file=str(name.env_file), rule="name-collision",
                        fix=f"use the existing name ({stem}) or a clearly different one",
                    )
                    return
            parent = f"{parent}/{segment}"

    def siblings(self, parent: str) -> dict[str, list[str]]:
        """The names in folder ``parent`` after the commit, by canonical key of their stem."""
        found = self.sibling_keys.get(parent)
        if found is None:
            found = {}
            for sibling in self.after.snap.listdir(parent):
                stem = sibling[: -len(".yaml")] if sibling.endswith(".yaml") else sibling
                found.setdefault(canonical_key(stem), []).append(sibling)
            self.sibling_keys[parent] = found
        return found

    # -- locks -----------------------------------------------------------------------------

    def check_lock(self, alias: Alias) -> None:
        """A written lock and meta must belong to a concrete tag and match its spec."""
        lock_path, meta_path = str(alias.lock_path), str(alias.meta_path)
        try:
            env = self.after.env(alias.name)
        except EnvctlError:
            return  # reported with the env file
        from envctl.spec import PointerTag

        if env is None or alias.tag not in env.tags or isinstance(env.tags[alias.tag], PointerTag):
            self.refuse(
                f"lock for {alias}, which is not a concrete tag of {alias.name.env_file}",
                file=lock_path if self.after.has(lock_path) else meta_path, tag=alias.tag,
                rule="orphan-lock", fix="declare the tag first; CI writes its lock",
            )
            return
        lock = self.after.read(lock_path)
        if lock is None or not self.after.has(meta_path):
            missing = lock_path if lock is None else meta_path
            self.refuse(f"{missing} is missing; a lock and its meta are committed together",
                        file=missing, tag=alias.tag, rule="invalid-lockfile",
                        fix="commit both files (CI writes them together)")
            return
        try:
            meta = self.after.meta(alias)
        except EnvctlError as exc:
            self.refuse_error(exc)
            return
        from envctl.lockcheck import LockInput, check_lock_content

        item = LockInput(alias=alias, meta=meta, lock=lock, spec=self.effective(alias),
                         tree_config=self.tree_config(), push_config=self.config,
                         base_meta=self.after.meta)
        for error in check_lock_content(item):
            self.refuse_error(error)

    def tree_config(self) -> CatalogConfig:
        """The commit's own config (what CI resolved the tree with); the push's if invalid."""
        try:
            return self.after.config() or self.config
        except EnvctlError:
            return self.config  # reported with catalog.yaml

    def effective(self, alias: Alias) -> Any:
        from envctl.spec import effective_spec

        try:
            return effective_spec(alias, self.after.lookup, self.tree_config())
        except EnvctlError as exc:
            self.refuse_error(exc)
            return None

    def tags_of(self, name: EnvName) -> list[str]:
        return [*(self.before.raw_tags(name) or {}), *(self.after.raw_tags(name) or {})]


def _alias(name: EnvName, tag: object) -> Alias | None:
    return Alias(name, tag) if is_valid_tag(tag) else None  # type: ignore[arg-type]


def _requirements(spec: Mapping[str, Any]) -> list[tuple[str, str, int | None]]:
    """``(kind, text, line)`` of every requirement a raw tag spec lists, its targets' too;
    kind is "conda" or "pypi". Values that are not strings are the schema's to refuse."""
    out: list[tuple[str, str, int | None]] = []

    def collect(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key, kind in (("dependencies", "conda"), ("pypi", "pypi")):
            values = node.get(key)
            if not isinstance(values, list):
                continue
            lines = getattr(values, "item_lines", [])
            for i, value in enumerate(values):
                if isinstance(value, str) and value.strip():
                    out.append((kind, value, lines[i] if i < len(lines) else None))

    collect(spec)
    targets = spec.get("target")
    if isinstance(targets, dict):
        for extra in targets.values():
            collect(extra)
    return out


_REQUIREMENT_PROBLEMS: dict[tuple[str, str, tuple[str, ...]], tuple[str, str, str] | None] = {}

# The shapes almost every requirement has ("numpy", "python=3.11", "numpy >=1.26,<2",
# "itsdangerous==2.1.2"), which the parsers surely accept: a push adding only these needs
# neither rattler (~40 ms to import, more than the rest of a tag push's rules) nor packaging.
# Strictly a subset of what the parsers accept (tests/test_policy.py checks it against them
# on generated strings); anything else, channel prefixes included, goes to the parsers.
_NUMBER = r"[0-9]{1,9}"
_VERSION = rf"{_NUMBER}(?:\.{_NUMBER}){{0,5}}"
_CONDA_ONE = rf"(?:(?:==|!=|=)?{_VERSION}(?:\.\*)?|(?:>=|<=|>|<){_VERSION})"
_SURELY_CONDA = re.compile(
    rf"[a-z0-9_][a-z0-9_.\-]{{0,99}}(?: ?(?:==|!=|>=|<=|>|<|=){_VERSION}(?:\.\*)?"
    rf"(?:,{_CONDA_ONE})*| {_CONDA_ONE}(?:,{_CONDA_ONE})*)?"
)
_PYPI_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._\-]{0,98}[A-Za-z0-9])?"
_PYPI_ONE = (
    rf"(?:(?:==|!=){_VERSION}(?:\.\*)?|(?:>=|<=|>|<){_VERSION}|~={_NUMBER}(?:\.{_NUMBER}){{1,5}})"
)
_SURELY_PYPI = re.compile(
    rf"{_PYPI_NAME}(?:\[{_PYPI_NAME}(?:,{_PYPI_NAME})*\])? ?(?:{_PYPI_ONE}(?:,{_PYPI_ONE})*)?"
)


def surely_valid(kind: str, text: str) -> bool:
    """Whether ``text`` has one of the common shapes the parsers certainly accept."""
    pattern = _SURELY_CONDA if kind == "conda" else _SURELY_PYPI
    return pattern.fullmatch(text.strip()) is not None


def _requirement_problem(
    kind: str, text: str, channels: tuple[str, ...]
) -> tuple[str, str, str] | None:
    """(message, rule, fix) when ``text`` would not resolve, else None. Pure: the parsers of
    :mod:`envctl.spec` (imported here, on first use) and the catalog's channel names."""
    if surely_valid(kind, text):
        return None
    key = (kind, text, channels if kind == "conda" else ())
    if key not in _REQUIREMENT_PROBLEMS:
        from envctl.spec import normalize_conda_spec, normalize_pypi_requirement

        try:
            if kind == "conda":
                normalize_conda_spec(text, channels=channels)
            else:
                normalize_pypi_requirement(text)
        except EnvctlError as exc:
            fix = exc.fix or (
                "write it like 'numpy >=1.26' or 'python=3.11'" if kind == "conda"
                else "write it like 'itsdangerous==2.1.2'"
            )
            _REQUIREMENT_PROBLEMS[key] = (exc.message, exc.rule, fix)
        else:
            _REQUIREMENT_PROBLEMS[key] = None
    return _REQUIREMENT_PROBLEMS[key]


def _without_retired(spec: Any) -> Any:
    if isinstance(spec, dict):
        return {k: v for k, v in spec.items() if k != "retired"}
    return spec


def _allowed_other(path: str) -> bool:
    if path.startswith(ALLOWED_DIRS):
        return True
    if "/" in path:
        return False
    return path in ALLOWED_FILES or path.startswith(ALLOWED_FILE_PREFIXES)


#: Every rule id this module reports (besides the YAML loader's and the schema's).
RULES = (
    "branch-deletion", "force-push", "frozen-tag", "frozen-lock", "immutable-stays-immutable",
    "unsigned-lock", "bad-signature", "unknown-signer", "forged-signer", "req-id-mismatch",
    "base-mismatch", "full-id-mismatch", "lock-platforms", "lock-hash-mismatch",
    "channel-not-allowed",
    "missing-sha256", "invalid-lockfile", "orphan-lock", "pointer-missing", "pointer-other-env",
    "pointer-to-mutable", "pointer-immutable", "name-collision", "path-not-allowed", "symlink",
    "not-a-file", "invalid-name", "not-owner", "config-deleted", "file-too-large",
    "invalid-requirement", "unknown-channel",
)
