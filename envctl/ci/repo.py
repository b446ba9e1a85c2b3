"""Where the catalog sits in its git repository, and the few git calls CI makes.

A catalog may be a folder of a larger repository (this repository keeps its own in
``catalog/``), so every path git sees is ``<subdir><catalog path>``. All git goes
through :func:`envctl.git.run_git`, which scrubs inherited ``GIT_*`` variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from subprocess import CompletedProcess

from envctl.errors import CatalogError, GitError
from envctl.git import rev_parse, run_git, toplevel

#: git's empty tree: the "before" of a first run, when no CI commit exists yet.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class CatalogRepo:
    """A catalog root inside a git work tree."""

    root: Path
    top: Path
    subdir: str  # "" or "catalog/" (with the slash)

    @classmethod
    def open(cls, root: Path) -> CatalogRepo:
        root = Path(root).resolve()
        top = toplevel(root)
        if top is None:
            raise CatalogError(
                f"{root} is not in a git repository; envctl ci works on a clone of the catalog",
                file=str(root),
                rule="not-a-repo",
                fix="run it in a checkout of the catalog's protected branch",
            )
        top = top.resolve()
        rel = root.relative_to(top).as_posix()
        return cls(root=root, top=top, subdir="" if rel == "." else rel + "/")

    def git(
        self,
        args: Sequence[str],
        *,
        input: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float | None = 120,
    ) -> CompletedProcess[bytes]:
        return run_git(self.top, args, input=input, check=check, env=env, timeout=timeout)

    def text(self, args: Sequence[str], **kwargs: object) -> str:
        return self.git(args, **kwargs).stdout.decode("utf-8", "replace")  # type: ignore[arg-type]

    def rev(self, rev: str) -> str:
        return rev_parse(self.top, rev)

    def path(self, rel: str) -> str:
        """A catalog-relative path as git names it."""
        return self.subdir + rel

    def rel(self, git_path: str) -> str | None:
        """A git path as a catalog-relative path; None when it is outside the catalog."""
        if not git_path.startswith(self.subdir):
            return None
        return git_path[len(self.subdir) :]

    def source(self, rev: str):  # -> GitSource; import kept local (catalog pulls pydantic)
        from envctl.catalog import GitSource

        return GitSource(self.top, rev, subdir=self.subdir.rstrip("/"))

    def catalog(self, rev: str):  # -> Catalog
        from envctl.catalog import Catalog

        return Catalog(self.source(rev))

    def work_catalog(self):  # -> Catalog of the work tree
        from envctl.catalog import Catalog, WorkTreeSource

        return Catalog(WorkTreeSource(self.root))

    def is_ancestor(self, old: str, new: str) -> bool:
        proc = self.git(["merge-base", "--is-ancestor", old, new], check=False)
        if proc.returncode not in (0, 1):
            raise GitError(f"cannot compare {old[:12]} and {new[:12]}", file=str(self.top))
        return proc.returncode == 0

    def parents(self, rev: str) -> list[str]:
        out = self.text(["rev-list", "--parents", "-n", "1", rev]).split()
        return out[1:]

    def message(self, rev: str) -> str:
        return self.text(["log", "-1", "--format=%B", rev])

    @cached_property
    def head(self) -> str:
        return self.rev("HEAD")

    # -- the remote ------------------------------------------------------------------

    def fetch(self, remote: str, branch: str) -> str:
        """Fetch ``branch`` from ``remote`` into ``refs/remotes/<remote>/<branch>``; its tip."""
        ref = f"refs/remotes/{remote}/{branch}"
        proc = self.git(
            ["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{ref}"], check=False
        )
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(
                f"cannot fetch {branch} from {remote}: {lines[-1] if lines else proc.returncode}",
                file=str(self.top),
                rule="fetch-failed",
                fix=f"check that the remote {remote!r} exists and is reachable",
            )
        return self.rev(ref)

    def has_local_changes(self, paths: Sequence[str]) -> bool:
        proc = self.git(["status", "--porcelain", "--untracked-files=no", "--", *paths])
        return bool(proc.stdout.strip())


def file_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def remove_if_same(path: Path, data: bytes) -> bool:
    """Delete ``path`` if it holds exactly ``data`` (never a file someone else changed)."""
    if file_bytes(path) == data:
        os.unlink(path)
        return True
    return False
