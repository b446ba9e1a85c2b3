"""Read a catalog from a work tree or from any git revision, without checking it out.

Everything is read lazily and cached: the hook and ``show`` touch only the
files they need, so their cost follows the request, not the catalog's size.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from envctl import yamlio
from envctl.config import CONFIG_FILE, CatalogConfig, parse_config
from envctl.errors import CatalogError, EnvctlError, NotFoundError
from envctl.git import BlobReader, rev_parse, run_git, toplevel
from envctl.meta import Meta, load_meta
from envctl.names import DEFAULT_TAG, Alias, EnvName, env_name_from_path
from envctl.spec import ConcreteTag, EnvFile, PointerTag, effective_spec, parse_env_file

ENVS_DIR = "envs"
LOCKS_DIR = "locks"
CATALOG_ENV_VAR = "ENVCTL_CATALOG"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", None)
_OPEN_FLAGS = (
    None if _NOFOLLOW is None else os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
)


class Entry(NamedTuple):
    """One file of a catalog folder. A tuple, not a frozen dataclass: lint lists 150,000
    of them on a large catalog and a frozen dataclass is several times slower to build."""

    path: str
    kind: Literal["file", "symlink", "other"]
    size: int | None = None


class Source(Protocol):
    """Where a catalog's files come from."""

    label: str

    def read(self, path: str) -> bytes | None: ...

    def entries(self, prefix: str) -> list[Entry]: ...


class WorkTreeSource:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def read_many(self, paths: Sequence[str]) -> list[bytes | None]:
        return [self.read(path) for path in paths]

    def fork(self) -> WorkTreeSource:
        """The source a forked worker process reads through (this one: it holds no state)."""
        return self

    def read(self, path: str) -> bytes | None:
        full = os.path.join(self.root, path)
        if _OPEN_FLAGS is None:  # no O_NOFOLLOW (Windows): check, then read
            p = Path(full)
            if p.is_symlink() or not p.is_file():
                return None
            return p.read_bytes()
        # One open that refuses a symlink (O_NOFOLLOW) and never waits on a FIFO
        # (O_NONBLOCK), then fstat: a third of the system calls of is_symlink + is_file +
        # read_bytes, which matters when lint reads 80,000 metas.
        try:
            fd = os.open(full, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink: never followed
                return None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            chunks = []
            while chunk := os.read(fd, max(info.st_size + 1, 1 << 16)):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def entries(self, prefix: str) -> list[Entry]:
        # os.scandir gives each entry's type without a stat (and one stat for a file's
        # size), where Path.is_symlink / is_file / stat cost three: 10,000 environments
        # have about 150,000 files under locks/.
        top = os.path.join(self.root, prefix)
        cut = len(os.path.join(self.root, ""))
        found: list[Entry] = []
        folders = [top]
        while folders:
            try:
                listing = os.scandir(folders.pop())
            except OSError:  # missing or unreadable: os.walk skipped those too
                continue
            with listing:
                for item in listing:
                    rel = item.path[cut:]
                    if os.sep != "/":
                        rel = rel.replace(os.sep, "/")
                    if item.is_symlink():
                        found.append(Entry(rel, "symlink"))  # a linked folder is not entered
                    elif item.is_dir(follow_symlinks=False):
                        folders.append(item.path)
                    elif item.is_file(follow_symlinks=False):
                        found.append(Entry(rel, "file", item.stat(follow_symlinks=False).st_size))
                    else:
                        found.append(Entry(rel, "other"))
        found.sort(key=lambda e: e.path)
        return found


class GitSource:
    """A catalog as it is at one git revision. ``scrub=False`` inside a pre-receive hook."""

    def __init__(self, repo: Path, rev: str, *, subdir: str = "", scrub: bool = True) -> None:
        self.repo = repo
        self.rev = rev
        # A catalog may live in a folder of a larger repository (this repo's own catalog/).
        self.subdir = subdir.strip("/") + "/" if subdir.strip("/") else ""
        self.label = f"{subdir or '.'} at {rev[:12]}"
        self._scrub = scrub
        self._blobs = BlobReader(repo, scrub=scrub)

    def fork(self) -> GitSource:
        """A copy with its own ``git cat-file`` process, for a forked worker process (the
        parent's pipe must not be shared)."""
        return GitSource(self.repo, self.rev, subdir=self.subdir, scrub=self._scrub)

    def read(self, path: str) -> bytes | None:
        return self._blobs.read(f"{self.rev}:{self.subdir}{path}")

    def read_many(self, paths: Sequence[str]) -> list[bytes | None]:
        """:meth:`read` of each path, in order, in few round trips to git."""
        return self._blobs.read_many([f"{self.rev}:{self.subdir}{p}" for p in paths])

    def entries(self, prefix: str) -> list[Entry]:
        out = run_git(
            self.repo,
            ["ls-tree", "-r", "-z", "--long", "--full-tree", self.rev, "--", self.subdir + prefix],
            scrub=self._scrub,
        ).stdout
        found: list[Entry] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            info, _, path = record.partition(b"\t")
            mode, kind, _sha, size = info.split()
            name = path.decode("utf-8", "surrogateescape")[len(self.subdir) :]
            if mode == b"120000":
                found.append(Entry(name, "symlink"))
            elif kind == b"blob" and mode in (b"100644", b"100755"):
                found.append(Entry(name, "file", int(size)))
            else:
                found.append(Entry(name, "other"))
        return found


TagState = Literal["pending", "frozen", "retired", "pointer", "rolling"]


@dataclass(frozen=True)
class TagInfo:
    alias: Alias
    spec: ConcreteTag | PointerTag
    mutable: bool
    state: TagState
    meta: Meta | None


class Catalog:
    def __init__(self, source: Source) -> None:
        self.source = source
        self._envs: dict[EnvName, EnvFile] = {}
        self._raw: dict[EnvName, object] = {}
        self._metas: dict[Alias, Meta | None] = {}
        self._mutable: dict[str, bool] = {}

    # -- files --------------------------------------------------------------------------

    def read_yaml(self, path: str, *, max_bytes: int = yamlio.MAX_BYTES) -> object | None:
        data = self.source.read(path)
        if data is None:
            return None
        return yamlio.load(data, file=path, max_bytes=max_bytes)

    @cached_property
    def config(self) -> CatalogConfig:
        data = self.read_yaml(CONFIG_FILE)
        if data is None:
            raise CatalogError(
                f"no {CONFIG_FILE} in {self.source.label}",
                file=CONFIG_FILE,
                rule="not-a-catalog",
                fix="run inside a catalog, pass --catalog DIR, or create one with 'envctl init'",
            )
        return parse_config(data)

    def env_entries(self) -> list[Entry]:
        return self.source.entries(ENVS_DIR)

    def env_names(self) -> list[EnvName]:
        names = []
        for entry in self.env_entries():
            if entry.kind != "file":
                continue  # symlinks are refused (read() returns None); lint reports them
            try:
                names.append(env_name_from_path(entry.path))
            except EnvctlError:
                continue  # lint reports it; readers skip what is not an environment
        return sorted(names, key=lambda n: n.segments)  # EnvName's own order, in C

    def has_env(self, name: EnvName) -> bool:
        return name in self._envs or self.source.read(str(name.env_file)) is not None

    def raw_env(self, name: EnvName) -> object:
        if name not in self._raw:
            data = self.read_yaml(str(name.env_file))
            if data is None:
                raise NotFoundError(
                    f"no environment named {name}",
                    file=str(name.env_file),
                    fix=self._suggest(name),
                )
            self._raw[name] = data
        return self._raw[name]

    def env(self, name: EnvName) -> EnvFile:
        if name not in self._envs:
            file = str(name.env_file)
            if name in self._raw:
                self._envs[name] = parse_env_file(self._raw[name], file=file)
                return self._envs[name]
            data = self.source.read(file)
            try:
                # Without line maps first (faster, and most files are valid); a file with a
                # problem is loaded again below so that the error names its line.
                plain = None if data is None else yamlio.load(data, file=file, lines=False)
                if plain is not None:
                    self._envs[name] = parse_env_file(plain, file=file)
                    return self._envs[name]
            except EnvctlError:
                pass
            self._envs[name] = parse_env_file(self.raw_env(name), file=file)
        return self._envs[name]

    def preload_envs(self, names: list[EnvName]) -> None:
        """Parse many environment files at once, in worker processes on a large catalog
        (:mod:`envctl.forkpool`): for commands that read them all (list, search, the site).
        A file with a problem is left for :meth:`env` to read again and report."""
        from envctl.forkpool import reading

        todo = [name for name in names if name not in self._envs and name not in self._raw]
        with reading(self.source, [str(name.env_file) for name in todo]) as parsed_files:
            for name, parsed in zip(todo, parsed_files, strict=True):
                if parsed is None:
                    continue
                with contextlib.suppress(EnvctlError):
                    self._envs[name] = parse_env_file(parsed[1], file=str(name.env_file))

    def _suggest(self, name: EnvName) -> str:
        known = [str(n) for n in self.env_names()]
        close = difflib.get_close_matches(str(name), known, n=3)
        if close:
            return f"did you mean {', '.join(close)}?"
        return "'envctl list' shows the environments this catalog has"

    # -- tags ---------------------------------------------------------------------------

    def tag(self, alias: Alias) -> ConcreteTag | PointerTag:
        env = self.env(alias.name)
        if alias.tag not in env.tags:
            close = difflib.get_close_matches(alias.tag, list(env.tags), n=3)
            fix = f"did you mean {', '.join(close)}?" if close else (
                f"{alias.name} has tags: {', '.join(env.tags)}"
            )
            raise NotFoundError(
                f"{alias.name} has no tag {alias.tag!r}",
                file=str(alias.name.env_file),
                tag=alias.tag,
                fix=fix,
            )
        return env.tags[alias.tag]

    def meta(self, alias: Alias) -> Meta | None:
        if alias not in self._metas:
            path = str(alias.meta_path)
            data = self.source.read(path)
            self._metas[alias] = None if data is None else load_meta(data, file=path)
        return self._metas[alias]

    def lock_bytes(self, alias: Alias) -> bytes | None:
        return self.source.read(str(alias.lock_path))

    def is_mutable(self, tag: str) -> bool:
        # Cached: list asks for every tag of every environment, and each answer is a
        # match against every mutable_tags pattern.
        if tag not in self._mutable:
            self._mutable[tag] = self.config.is_mutable(tag)
        return self._mutable[tag]

    def info(self, alias: Alias) -> TagInfo:
        spec = self.tag(alias)
        mutable = self.is_mutable(alias.tag)
        meta = None if isinstance(spec, PointerTag) else self.meta(alias)
        state: TagState
        if isinstance(spec, PointerTag):
            state = "pointer"
        elif spec.retired:
            state = "retired"
        elif mutable:
            state = "rolling"
        elif meta is not None and self.lock_bytes(alias) is not None:
            state = "frozen"
        else:
            state = "pending"
        return TagInfo(alias=alias, spec=spec, mutable=mutable, state=state, meta=meta)

    def resolve(self, alias: Alias) -> Alias:
        """The concrete tag an alias means: follows one pointer; applies the ``latest`` rule.

        A name without a tag means ``:latest``; if ``latest`` is not declared, it is the
        newest frozen immutable tag (the last one declared in the file).
        """
        env = self.env(alias.name)
        if alias.tag == DEFAULT_TAG and DEFAULT_TAG not in env.tags:
            frozen = [
                Alias(alias.name, t)
                for t, spec in env.tags.items()
                if isinstance(spec, ConcreteTag) and not self.is_mutable(t)
                and not spec.retired and self.meta(Alias(alias.name, t)) is not None
            ]
            if not frozen:
                raise NotFoundError(
                    f"{alias.name} declares no 'latest' tag and has no locked immutable tag yet",
                    file=str(alias.name.env_file),
                    tag=DEFAULT_TAG,
                    fix=f"name a tag explicitly ({', '.join(env.tags)}) or wait for CI to lock one",
                )
            return frozen[-1]
        spec = self.tag(alias)
        if isinstance(spec, PointerTag):
            return Alias(alias.name, spec.points_to)
        return alias

    def effective(self, alias: Alias):  # -> EffectiveSpec
        return effective_spec(alias, self.tag, self.config)

    def aliases(self, name: EnvName) -> Iterator[Alias]:
        for tag in self.env(name).tags:
            yield Alias(name, tag)

    def pointers_to(self, alias: Alias) -> list[str]:
        """Tags of the same env that point at ``alias`` (Metaflow shows them as aliases)."""
        env = self.env(alias.name)
        return [
            t
            for t, spec in env.tags.items()
            if isinstance(spec, PointerTag) and spec.points_to == alias.tag
        ]


# -- finding and opening ----------------------------------------------------------------


def find_root(start: Path | None = None, explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--catalog``, then ``$ENVCTL_CATALOG``, then the nearest parent with a catalog.yaml."""
    if explicit is None:
        explicit = os.environ.get(CATALOG_ENV_VAR) or None
    if explicit is not None:
        root = Path(explicit).expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise CatalogError(
                f"{root} is not a catalog (no {CONFIG_FILE})",
                file=str(root),
                rule="not-a-catalog",
                fix="point --catalog / ENVCTL_CATALOG at a directory made by 'envctl init'",
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise CatalogError(
        f"no {CONFIG_FILE} in {here} or any parent directory",
        rule="not-a-catalog",
        fix="cd into a catalog, pass --catalog DIR, set ENVCTL_CATALOG, or run 'envctl init DIR'",
    )


def open_catalog(
    explicit: str | os.PathLike[str] | None = None, *, rev: str | None = None
) -> Catalog:
    root = find_root(explicit=explicit)
    if rev is not None:
        top = toplevel(root)
        if top is None:
            raise CatalogError(
                f"{root} is not in a git repository, so --rev cannot be read",
                rule="not-a-repo",
                fix="run 'git init' there or drop --rev",
            )
        subdir = root.relative_to(top.resolve()).as_posix()
        return Catalog(GitSource(top, rev_parse(top, rev), subdir="" if subdir == "." else subdir))
    return Catalog(WorkTreeSource(root))
