"""Every position a tag has held on the protected branch, from git history.

A mutable tag's history is the history of its line in the env file (and, for a rolling
spec, of its meta file); an immutable tag's is when it was added, resolved (its meta
committed) and perhaps retired. Read with two git processes whatever the length of the
history:

1. ``git log --first-parent --raw`` on just the env file and the tag's meta file: every
   commit of the branch that touched them, with the blob id of each file after it;
2. one ``git cat-file --batch`` reading each distinct blob once, all ids sent at once.

``--first-parent`` keeps to states the branch itself was in: a pull request's
intermediate commits never were the tag's position on the branch (with merge commits,
the entry is the merge; with squash or rebase merges, the change itself). Consecutive
commits that leave the tag where it was (another tag edited, a comment) collapse into
nothing.

JSON shape of :meth:`TagHistory.to_dict`::

    {"alias": "ranking/base:stable", "kind": "pointer" | "rolling" | "immutable" | "absent",
     "mutable": true, "branch": "main", "rev": "<sha of the branch tip read>",
     "entries": [{"commit": "<sha>", "author": "Ada", "email": "ada@example.org",
                  "date": "2024-05-01T12:00:00Z", "message": "<subject line>",
                  "event": "created" | "added" | "moved" | "respecified" | "resolved"
                           | "relocked" | "retired" | "removed",
                  "target": "v2" | null,            # a pointer's target at that commit
                  "ids": {"linux-64": "req_id:full_id"}}]}   # a pointer: its target's;
                                                              # otherwise the tag's meta then

Entries are oldest first; ``date`` is the author date in UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl import yamlio
from envctl.errors import EnvctlError, GitError, NotFoundError
from envctl.git import BlobReader, run_git
from envctl.names import DEFAULT_TAG, Alias, EnvName

if TYPE_CHECKING:
    from envctl.catalog import Catalog

__all__ = ["HistoryEntry", "TagHistory", "branch_rev", "env_history", "history_of",
           "tag_history"]

_ZERO = "0" * 40
_RECORD = "\x1e"
_FIELD = "\x1f"


@dataclass(frozen=True)
class HistoryEntry:
    commit: str
    author: str
    email: str
    date: str
    message: str
    event: str
    target: str | None = None
    ids: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "author": self.author,
            "email": self.email,
            "date": self.date,
            "message": self.message,
            "event": self.event,
            "target": self.target,
            "ids": dict(self.ids),
        }


@dataclass(frozen=True)
class TagHistory:
    alias: str
    kind: str
    mutable: bool
    branch: str
    rev: str
    entries: list[HistoryEntry]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "kind": self.kind,
            "mutable": self.mutable,
            "branch": self.branch,
            "rev": self.rev,
            "entries": [e.to_dict() for e in self.entries],
        }


def branch_rev(top: Path, branch: str) -> str:
    """The commit to read ``branch`` at: the local branch, else ``origin/<branch>`` (a CI
    clone often has only that), else a clear error."""
    for candidate in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}", branch):
        proc = run_git(top, ["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
                       check=False)
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    raise GitError(
        f"no branch {branch!r} (nor origin/{branch}) in {top}",
        rule="unknown-revision",
        fix="fetch the protected branch, or name a revision with --rev",
    )


@dataclass(frozen=True)
class _Commit:
    sha: str
    author: str
    email: str
    date: str
    message: str
    blobs: dict[str, str]  # path -> blob id after the commit ("" when deleted)


def _log(top: Path, rev: str, paths: list[str]) -> list[_Commit]:
    out = run_git(
        top,
        ["log", "--first-parent", "--diff-merges=first-parent", "--reverse", "--no-renames",
         "--raw", "--no-abbrev", f"--format={_RECORD}%H{_FIELD}%an{_FIELD}%ae{_FIELD}%at"
         f"{_FIELD}%s", rev, "--", *paths],
        timeout=300,
    ).stdout.decode("utf-8", "replace")
    commits = []
    for record in out.split(_RECORD)[1:]:
        header, _, rest = record.partition("\n")
        sha, author, email, seconds, message = header.split(_FIELD, 4)
        blobs: dict[str, str] = {}
        for line in rest.splitlines():
            if not line.startswith(":"):
                continue
            info, _, path = line.partition("\t")
            parts = info.split()
            new_blob = parts[3]
            blobs[path] = "" if new_blob == _ZERO else new_blob
        date = datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        commits.append(_Commit(sha, author, email, date, message, blobs))
    return commits


def _read_blobs(top: Path, blobs: list[str]) -> dict[str, bytes]:
    """Every blob in one ``cat-file --batch`` call with all ids written at once: one
    round trip instead of one per version (the per-object flush dominated long histories).
    """
    if not blobs:
        return {}
    out = run_git(top, ["cat-file", "--batch"], input="".join(b + "\n" for b in blobs).encode(),
                  timeout=300).stdout
    found: dict[str, bytes] = {}
    pos = 0
    for blob in blobs:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("ascii", "replace").split()
        pos = end + 1
        if len(header) != 3:
            continue  # "<id> missing": the object is not in this clone (shallow history)
        size = int(header[2])
        found[blob] = out[pos : pos + size]
        pos += size + 1  # the newline after each object
    return found


def _load(blob: str, data: dict[str, bytes], cache: dict[str, Any]) -> Any:
    if blob not in cache:
        raw = data.get(blob) if blob else None
        try:
            cache[blob] = None if raw is None else yamlio.load(raw, file=blob, lines=False)
        except EnvctlError:
            cache[blob] = None  # a broken revision says nothing about the tag
    return cache[blob]


def _ids(meta: Any) -> dict[str, str]:
    platforms = meta.get("platforms") if isinstance(meta, dict) else None
    if not isinstance(platforms, dict):
        return {}
    return {
        str(p): f"{m.get('req_id')}:{m.get('full_id')}"
        for p, m in sorted(platforms.items())
        if isinstance(m, dict) and m.get("req_id") and m.get("full_id")
    }


@dataclass(frozen=True)
class _Position:
    kind: str  # "absent" | "pointer" | "concrete"
    target: str | None = None
    spec: str | None = None  # canonical JSON of a concrete tag's spec
    retired: bool = False
    ids: tuple[tuple[str, str], ...] = ()


def _position(env_doc: Any, meta_doc: Any, tag: str) -> _Position:
    tags = env_doc.get("tags") if isinstance(env_doc, dict) else None
    spec = tags.get(tag) if isinstance(tags, dict) else None
    if spec is None:
        return _Position("absent")
    if isinstance(spec, dict) and "points_to" in spec:
        return _Position("pointer", target=str(spec["points_to"]))
    retired = isinstance(spec, dict) and bool(spec.get("retired"))
    return _Position("concrete", spec=json.dumps(spec, sort_keys=True), retired=retired,
                     ids=tuple(_ids(meta_doc).items()))


def _event(before: _Position, after: _Position, mutable: bool) -> str | None:
    if before == after:
        return None
    if after.kind == "absent":
        return "removed"
    if before.kind == "absent":
        if after.kind == "concrete" and not mutable:
            return "added"
        return "created"
    if before.kind != after.kind:
        return "respecified"
    if after.kind == "pointer":
        return "moved"
    if after.retired and not before.retired:
        return "retired"
    if before.spec != after.spec:
        return "respecified"
    if after.ids != before.ids:
        return "relocked" if before.ids or mutable else "resolved"
    return None


def history_of(top: Path, alias: Alias, rev: str, *, catalog: Catalog, branch: str,
               subdir: str = "", work_tree: Catalog | None = None) -> TagHistory:
    """``envctl history``: the history of the tag ``alias`` means on the branch.

    ``catalog`` is the catalog at ``rev``. A name without a tag follows ``show``'s rule
    (:meth:`Catalog.resolve`): ``:latest``, or the newest frozen immutable tag when
    ``latest`` is not declared. A tag never declared on the branch is a
    :class:`NotFoundError` (one declared and later removed has a history: its removal);
    ``work_tree`` lets that error say when the tag exists only in the work tree so far.
    """
    if alias.tag == DEFAULT_TAG:
        try:
            declared = DEFAULT_TAG in catalog.env(alias.name).tags
        except NotFoundError:
            declared = True  # no such environment at rev: reported below
        if not declared:
            alias = catalog.resolve(alias)
    result = tag_history(top, alias, rev, mutable=catalog.is_mutable(alias.tag),
                         subdir=subdir, branch=branch)
    if result.kind == "absent" and not result.entries:
        raise _never_declared(alias, branch, catalog, work_tree)
    return result


def _never_declared(alias: Alias, branch: str, catalog: Catalog,
                    work_tree: Catalog | None) -> NotFoundError:
    if work_tree is not None and _declares(work_tree, alias):
        fix = (f"it is only in the work tree so far, and history reads {branch}: merge it "
               "first, or pass --rev HEAD for the commits made since")
    else:
        try:
            catalog.tag(alias)
        except NotFoundError as exc:  # names the tags (or environments) there are
            fix = exc.fix or ""
        else:  # pragma: no cover - declared at rev but never in its history
            fix = "check --rev"
    return NotFoundError(f"{alias} was never declared on {branch}",
                         file=str(alias.name.env_file), tag=alias.tag, fix=fix)


def _declares(catalog: Catalog, alias: Alias) -> bool:
    try:
        catalog.tag(alias)
    except EnvctlError:
        return False
    return True


def tag_history(top: Path, alias: Alias, rev: str, *, mutable: bool, subdir: str = "",
                branch: str = "") -> TagHistory:
    """The positions ``alias`` held at ``rev`` and before (``top``: the repository;
    ``subdir``: the catalog's folder in it)."""
    return env_history(top, alias.name, {alias.tag: mutable}, rev, subdir=subdir,
                       branch=branch)[alias.tag]


def env_history(top: Path, name: EnvName, tags: dict[str, bool], rev: str, *,
                subdir: str = "", branch: str = "") -> dict[str, TagHistory]:
    """:func:`tag_history` of several tags of one environment (``tags``: tag -> mutable),
    from one ``git log`` and one blob read for them all (the HTML site reads every
    mutable tag of every environment)."""
    prefix = subdir.strip("/") + "/" if subdir.strip("/") else ""
    env_path = prefix + str(name.env_file)
    meta_paths = {tag: prefix + str(Alias(name, tag).meta_path) for tag in tags}
    commits = _log(top, rev, [env_path, *meta_paths.values()])
    blobs = _read_blobs(top, list(dict.fromkeys(
        b for c in commits for b in c.blobs.values() if b)))
    cache: dict[str, Any] = {}
    found: dict[str, tuple[list[HistoryEntry], _Position]] = {}
    for tag, mutable in tags.items():
        entries: list[HistoryEntry] = []
        env_blob = meta_blob = ""
        position = _Position("absent")
        for commit in commits:
            env_blob = commit.blobs.get(env_path, env_blob)
            meta_blob = commit.blobs.get(meta_paths[tag], meta_blob)
            if env_path not in commit.blobs and meta_paths[tag] not in commit.blobs:
                continue  # another tag's meta: nothing this tag depends on changed
            now = _position(_load(env_blob, blobs, cache), _load(meta_blob, blobs, cache),
                            tag)
            event = _event(position, now, mutable)
            # An immutable tag whose lock arrives in the commit that adds it: both facts.
            if event == "added" and now.ids:
                entries.append(_entry(commit, "added", now))
                event = "resolved"
            if event is not None:
                entries.append(_entry(commit, event, now))
            position = now
        found[tag] = (entries, position)

    targets = sorted({e.target for entries, _ in found.values() for e in entries if e.target})
    reader = BlobReader(top)
    try:
        target_ids = {t: _target_ids(reader, rev, prefix, Alias(name, t)) for t in targets}
    finally:
        reader.close()
    out = {}
    for tag, (entries, position) in found.items():
        mutable = tags[tag]
        entries = [
            HistoryEntry(e.commit, e.author, e.email, e.date, e.message, e.event, e.target,
                         target_ids.get(e.target, {}) if e.target else e.ids)
            for e in entries
        ]
        kind = {"pointer": "pointer", "absent": "absent"}.get(
            position.kind, "rolling" if mutable else "immutable")
        out[tag] = TagHistory(str(Alias(name, tag)), kind, mutable, branch, rev, entries)
    return out


def _entry(commit: _Commit, event: str, position: _Position) -> HistoryEntry:
    return HistoryEntry(commit.sha, commit.author, commit.email, commit.date, commit.message,
                        event, position.target, dict(position.ids))


def _target_ids(reader: BlobReader, rev: str, prefix: str, target: Alias) -> dict[str, str]:
    """A pointer target's ids, from its meta at ``rev``: an immutable tag's lock never
    changes once committed, so today's meta says what the pointer meant then."""
    path = prefix + str(target.meta_path)
    data = reader.read(f"{rev}:{path}")
    if data is None:
        return {}
    try:
        return _ids(yamlio.load(data, file=path, lines=False))
    except EnvctlError:
        return {}
