"""Which catalog the lifecycle commands judge, and which store they act on.

``verify`` and ``gc`` read the catalog as it is on the protected branch (``branch:`` in
catalog.yaml), never the work tree: uncommitted edits must not make gc delete an
object that the branch still names, nor make verify pass on locks nobody merged.

- :func:`protected_revision` picks the commit: ``--rev`` when given, else the local
  protected branch, else ``origin/<branch>``. Run gc in CI (or after ``git fetch``):
  a stale clone sees fewer tags, and only the grace period and the store's own alias
  records stand between it and a tag locked since.
- :class:`RevSource` is a catalog :class:`~envctl.catalog.Source` at one revision that
  shares one ``git cat-file --batch`` process with every other revision read, so
  walking a long history costs one process, not one per commit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.catalog import Catalog, Entry, GitSource, WorkTreeSource, find_root
from envctl.errors import CatalogError, GitError
from envctl.git import BlobReader, rev_parse, run_git, toplevel

if TYPE_CHECKING:
    from envctl.store.base import Store


class RevSource:
    """A catalog :class:`~envctl.catalog.Source` at ``rev`` whose blobs come through a
    shared :class:`BlobReader`; listings are :class:`GitSource`'s (whose own reader, never
    used, starts no process)."""

    def __init__(self, blobs: BlobReader, repo: Path, rev: str, subdir: str = "") -> None:
        self._tree = GitSource(repo, rev, subdir=subdir)
        self._blobs = blobs
        self.rev = rev
        self.label = self._tree.label

    def read(self, path: str) -> bytes | None:
        return self._blobs.read(f"{self.rev}:{self._tree.subdir}{path}")

    def entries(self, prefix: str) -> list[Entry]:
        return self._tree.entries(prefix)


@dataclass
class CatalogAt:
    """A catalog work tree and, when it is in git, the commit the lifecycle judges."""

    root: Path
    top: Path | None  # the git repository's top folder, None outside git
    subdir: str  # the catalog's folder inside the repository ("" at its top)
    rev: str | None  # the commit, None when reading the work tree
    catalog: Catalog

    @property
    def label(self) -> str:
        return f"{self.rev[:12]}" if self.rev else str(self.root)


def protected_revision(top: Path, branch: str, rev: str | None) -> str:
    """The commit ``rev`` names, else the protected ``branch`` (local, then origin's)."""
    if rev is not None:
        return rev_parse(top, rev)
    for candidate in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        proc = run_git(top, ["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
                       check=False)
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    raise GitError(
        f"the protected branch {branch!r} does not exist here (neither {branch} nor "
        f"origin/{branch})",
        file=str(top),
        rule="unknown-revision",
        fix=f"fetch it (git fetch origin {branch}) or name a commit with --rev",
    )


def open_protected(
    explicit: str | os.PathLike[str] | None = None,
    *,
    rev: str | None = None,
    require_git: bool = False,
) -> CatalogAt:
    """The catalog at ``--catalog``/``$ENVCTL_CATALOG``/the nearest catalog, read at the
    protected branch (or ``rev``). Outside git the work tree is read, unless
    ``require_git`` (gc needs history)."""
    root = find_root(explicit=explicit)
    top = toplevel(root)
    if top is None:
        if require_git or rev is not None:
            raise CatalogError(
                f"{root} is not in a git repository",
                file=str(root),
                rule="not-a-repo",
                fix="gc and --rev read the catalog's git history; run them in a clone",
            )
        return CatalogAt(root, None, "", None, Catalog(WorkTreeSource(root)))
    work = Catalog(WorkTreeSource(root))
    subdir = root.resolve().relative_to(top.resolve()).as_posix()
    subdir = "" if subdir == "." else subdir
    commit = protected_revision(top, work.config.branch, rev)
    return CatalogAt(root, top, subdir, commit, Catalog(GitSource(top, commit, subdir=subdir)))


def open_lifecycle_store(url: str | None, at: CatalogAt) -> Store:
    """``--store``, else ``$ENVCTL_STORE``, else ``store:`` of catalog.yaml (relative to the
    catalog folder)."""
    from envctl.store import open_store

    if url:
        return open_store(url, where="--store")
    if os.environ.get("ENVCTL_STORE"):
        return open_store(os.environ["ENVCTL_STORE"], where="ENVCTL_STORE")
    return open_store(at.catalog.config.store or "", base_dir=at.root)
