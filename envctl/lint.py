"""Validate a whole catalog and report every problem, not just the first.

``lint_catalog`` reads ``catalog.yaml``, every file under ``envs/`` and every file
under ``locks/`` once, and returns a :class:`LintReport` whose findings are
``EnvctlError`` values (file, line, tag, rule, fix). It never prints and never
raises for a problem in the catalog; only a bug raises.

Speed matters (10,000 environments should lint in a few seconds): files are read
through the catalog's source without subprocesses per file, locks are not parsed
(only metas are), and requirement normalisation is cached per distinct string,
because most environments repeat the same few requirements.

Locked tags (a lock and a meta beside each other) get the push-time rules early:

- ``frozen-tag-changed``: an immutable tag whose own text no longer gives the request its
  meta records (its requirements normalised as the resolver does, and the channels,
  platforms, virtual packages and base it sets itself) was edited after CI locked it; the
  server would refuse the push. Defaults inherited from ``catalog.yaml`` are compared as
  recorded, because a later change of defaults never changes a frozen tag.
- ``immutable-stays-immutable``: a tag locked as immutable (its meta has an
  ``exclude_newer``; CI resolves rolling tags without one) that ``mutable_tags`` now
  matches. The finding is on ``catalog.yaml``, and such a tag is still treated as
  immutable (pointers at it are fine), as the server does.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from envctl import forkpool, yamlio
from envctl.catalog import ENVS_DIR, LOCKS_DIR, Catalog, Entry, Source
from envctl.collector import few_collections
from envctl.config import CONFIG_FILE, CatalogConfig
from envctl.errors import CatalogError, EnvctlError, InvalidNameError, MultipleErrors
from envctl.meta import fast_json, load_meta, parse_meta
from envctl.names import (
    LOCK_FILE_SUFFIX,
    META_FILE_SUFFIX,
    Alias,
    EnvName,
    canonical_key,
    env_name_from_path,
    is_valid_tag,
    parse_env_name,
    parse_tag,
)
from envctl.spec import (
    ConcreteTag,
    PointerTag,
    TagSpec,
    base_alias,
    normalize_conda_spec,
    normalize_pypi_requirement,
    parse_env_file,
)

if TYPE_CHECKING:
    from envctl.spec import PypiOptions

__all__ = ["LintReport", "format_finding", "lint_catalog"]

AnyTag = ConcreteTag | PointerTag


@dataclass
class LintReport:
    findings: list[EnvctlError] = field(default_factory=list)
    environments: int = 0
    tags: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        counts = f"{_plural(self.environments, 'environment')}, {_plural(self.tags, 'tag')}"
        if self.ok:
            return f"{counts}: ok"
        return f"{_plural(len(self.findings), 'problem')} in {counts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "environments": self.environments,
            "tags": self.tags,
            "problems": len(self.findings),
            "findings": [f.to_dict() for f in self.findings],
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_finding(error: EnvctlError) -> str:
    """``file:line: message [rule] — fix`` (the tag is named in the message itself)."""
    where = error.file or ""
    if error.file and error.line:
        where += f":{error.line}"
    text = f"{where}: {error.message}" if where else error.message
    text += f" [{error.rule}]"
    if error.fix:
        text += f" — {error.fix}"
    return text


def lint_catalog(catalog: Catalog) -> LintReport:
    """Every problem in ``catalog``, sorted by file and line."""
    return _Linter(catalog).run()


# -- cached normalisation ---------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _conda_problem(text: str, channels: tuple[str, ...] | None) -> tuple[str, str, str | None]:
    """('', '', None) when ``text`` normalises, else (message, rule, fix). Cached per string."""
    try:
        normalize_conda_spec(text, channels=channels)
    except CatalogError as exc:
        return exc.message, exc.rule, exc.fix
    return "", "", None


@lru_cache(maxsize=1 << 16)
def _pypi_problem(text: str) -> tuple[str, str, str | None]:
    try:
        normalize_pypi_requirement(text)
    except CatalogError as exc:
        return exc.message, exc.rule, exc.fix
    return "", "", None


@lru_cache(maxsize=1 << 16)
def _conda_normal(text: str) -> str | None:
    """The resolver's normal form of a conda requirement (None when it has none)."""
    try:
        return normalize_conda_spec(text)
    except CatalogError:
        return None


@lru_cache(maxsize=1 << 16)
def _pypi_normal(text: str) -> str | None:
    try:
        return normalize_pypi_requirement(text)
    except CatalogError:
        return None


class PlatformRecord(NamedTuple):
    """What a meta records for one platform besides requirements, as far as a tag's own text
    decides it (the same for most tags of a catalog: shared)."""

    platform: str
    channels: tuple[str, ...]
    virtual_packages: tuple[tuple[str, str], ...]


class MetaSummary(NamedTuple):
    """The parts of a valid meta the frozen-tag rules compare. Small, because workers send
    one per meta and lint keeps them all: the requirements as one digest, the rest shared."""

    base: str | None
    exclude_newer: str | None
    platforms: tuple[PlatformRecord, ...]  # sorted by platform
    requirements: bytes  # requirements_digest of every platform's, in that order


def requirements_digest(per_platform: Iterable[tuple[Iterable[str], Iterable[str]]]) -> bytes:
    """A digest of (normalised, sorted) dependencies and PyPI requirements per platform."""
    text = "\2".join("\0".join(conda) + "\1" + "\0".join(pypi) for conda, pypi in per_platform)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=12).digest()


_SHARED: dict[Any, Any] = {}


def _shared(value: Any) -> Any:
    """One object per distinct value (channel lists and virtual packages repeat a lot)."""
    return _SHARED.setdefault(value, value)


def _summary(meta: Any) -> MetaSummary:
    platforms = sorted(meta.platforms.items())
    return MetaSummary(
        base=meta.base,
        exclude_newer=_shared(meta.exclude_newer),
        platforms=_shared(tuple(
            PlatformRecord(platform, tuple(pm.request.channels),
                           tuple(pm.request.virtual_packages.items()))
            for platform, pm in platforms
        )),
        requirements=requirements_digest(
            (pm.request.dependencies, pm.request.pypi) for _, pm in platforms
        ),
    )


@dataclass(slots=True)
class _Chain:
    """What a concrete tag inherits through ``extends`` (None: nothing in the chain sets it)."""

    platforms: list[str] | None = None
    channels: list[str] | None = None
    specs: list[ConcreteTag] = field(default_factory=list)  # the tag first, then its bases

    @property
    def pypi_options(self) -> PypiOptions | None:
        return next((s.pypi_options for s in self.specs if s.pypi_options is not None), None)

    @property
    def has_pypi(self) -> bool:
        return any(s.pypi or any(t.pypi for t in s.target.values()) for s in self.specs)

    @property
    def has_virtual(self) -> bool:
        return any(s.virtual_packages for s in self.specs)

    def virtual_packages(self, platform: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for spec in reversed(self.specs):
            out.update(spec.virtual_packages.get(platform, {}))
        return out


_TAG_ADAPTER: TypeAdapter[Any] | None = None


def _tag_adapter() -> TypeAdapter[Any]:
    global _TAG_ADAPTER
    if _TAG_ADAPTER is None:
        _TAG_ADAPTER = TypeAdapter(TagSpec)
    return _TAG_ADAPTER


# -- the linter -------------------------------------------------------------------------


@dataclass
class _Env:
    """One environment file as far as it could be read: valid tags, plus every tag key."""

    name: EnvName
    file: str
    data: bytes  # the file; its line maps are loaded again only when a finding needs a line
    tags: dict[str, AnyTag]
    declared: set[str]  # every key under tags:, valid or not (so a broken tag is not "missing")
    loaded: Any = None  # the YamlMap, while kept

    @property
    def raw(self) -> Any:
        # Keeping every file's line maps held most of lint's memory on a large catalog,
        # and a clean environment never needs them.
        if self.loaded is None:
            self.loaded = yamlio.load(self.data, file=self.file)
        return self.loaded

    def tag_raw(self, tag: str) -> Any:
        tags = self.raw.get("tags") if isinstance(self.raw, dict) else None
        return tags.get(tag) if isinstance(tags, dict) else None

    def tag_line(self, tag: str, key: str | None = None, index: int | None = None) -> int | None:
        """Line of a tag, of one of its keys, or of one item of a list under that key."""
        tags = self.raw.get("tags") if isinstance(self.raw, dict) else None
        line = getattr(tags, "key_lines", {}).get(tag) if isinstance(tags, dict) else None
        node = self.tag_raw(tag)
        if key is None or not isinstance(node, dict):
            return line
        line = getattr(node, "key_lines", {}).get(key, line)
        value = node.get(key)
        if index is not None and isinstance(value, list):
            items = getattr(value, "item_lines", [])
            if index < len(items):
                line = items[index]
        return line


class _Linter:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.findings: list[EnvctlError] = []
        self.config = CatalogConfig()
        self.config_ok = False
        self.envs: dict[EnvName, _Env] = {}
        self.unreadable: set[EnvName] = set()  # files that exist but could not be parsed at all
        self.lock_dirs: dict[str, _Env] = {}  # lock folder -> its environment
        self.env_files = 0  # every environment file, also those that could not be read
        self.locked: dict[str, MetaSummary] = {}  # meta path -> summary, lock beside it
        self.mutable_pointers: list[tuple[_Env, str, PointerTag]] = []  # decided after locks

    def add(self, message: str, *, file: str, rule: str,
            line: int | Callable[[], int | None] | None = None,
            tag: str | None = None, fix: str | None = None) -> None:
        if callable(line):  # computed only for a finding: it may load the file's line maps
            line = line()
        self.findings.append(
            CatalogError(message, file=file, line=line, tag=tag, rule=rule, fix=fix)
        )

    def extend(self, error: EnvctlError) -> None:
        self.findings.extend(error.errors if isinstance(error, MultipleErrors) else [error])

    def run(self) -> LintReport:
        with few_collections():
            return self._run()

    def _run(self) -> LintReport:
        self.check_config()
        env_entries = [e for e in self.catalog.source.entries(ENVS_DIR) if not _is_keep_file(e)]
        # Parsing environment files and metas is most of the work on a large catalog and
        # needs nothing but each file's own bytes: worker processes parse them, the
        # environments first, while this one lists locks/ and checks what has arrived.
        with _Workers.start(self.catalog.source, env_entries) as workers:
            lock_entries = self.catalog.source.entries(LOCKS_DIR)
            workers.add_metas(lock_entries)
            for entry, parsed in workers.envs(env_entries):
                if entry.kind == "file" and entry.path.endswith(".yaml"):
                    self.env_files += 1
                env = self.load_env(entry, parsed)
                if env is not None:
                    self.envs[env.name] = env
            # The environments are read and live until the end: keep the collector from
            # traversing them again at every full collection (a second or more on a large
            # catalog, where the metas' summaries add many objects).
            gc.freeze()
            try:
                by_name = sorted(self.envs.items(), key=lambda item: item[0].segments)
                self.check_near_duplicates(
                    [(str(n), e.file, None) for n, e in by_name], "environment", None
                )
                for _, env in by_name:
                    self.check_env(env)
                self.check_locks(lock_entries, workers)
                workers.drop()
                self.check_locked_tags()
            finally:
                gc.unfreeze()
        # Sorted by file then line (stable), so a file's problems read top to bottom.
        self.findings.sort(key=lambda f: (f.file or "", f.line or 0))
        return LintReport(
            findings=self.findings,
            environments=self.env_files,
            tags=sum(len(e.declared) for e in self.envs.values()),
        )

    # -- catalog.yaml --------------------------------------------------------------------

    def check_config(self) -> None:
        try:
            self.config = self.catalog.config
            self.config_ok = True
        except EnvctlError as exc:
            # Keep going with the defaults so env files are still checked; channel checks
            # are skipped (config_ok) since we cannot know which channels exist.
            self.extend(exc)

    # -- envs/ ---------------------------------------------------------------------------

    def check_entry_kind(self, entry: Entry) -> bool:
        if entry.kind == "symlink":
            self.add(
                f"{entry.path} is a symlink", file=entry.path, rule="symlink",
                fix="replace it with a regular file: a symlink could point outside the catalog",
            )
            return False
        if entry.kind != "file":
            self.add(
                f"{entry.path} is not a regular file", file=entry.path, rule="not-a-file",
                fix="keep only regular files under envs/ and locks/",
            )
            return False
        return True

    def load_env(self, entry: Entry, parsed: forkpool.Parsed | None = None) -> _Env | None:
        """The environment in ``entry``, its problems added to the findings. ``parsed``: its
        bytes and their YAML without line maps, when a worker read them already."""
        path = entry.path
        if not self.check_entry_kind(entry):
            return None
        if not path.endswith(".yaml"):
            fix = "move it out of envs/: that folder holds only <env>.yaml files"
            if path.endswith(".yml"):
                fix = f"rename it to {path[: -len('.yml')]}.yaml"
            self.add(
                f"{path} is not an environment file (envs/<namespace>/.../<env>.yaml)",
                file=path, rule="not-yaml", fix=fix,
            )
            return None
        try:
            name = env_name_from_path(path)
        except InvalidNameError as exc:
            self.findings.append(exc)
            return None
        if entry.size is not None and entry.size > yamlio.MAX_BYTES:
            self.add(
                f"file is {entry.size} bytes, over the {yamlio.MAX_BYTES}-byte limit",
                file=path, rule="file-too-large",
                fix="split the environment, or retire old tags into a new name",
            )
            self.unreadable.add(name)
            return None
        if parsed is None:
            parsed = forkpool.read_plain(self.catalog.source, path)
        if parsed is not None:
            env = self.parse_clean(name, path, *parsed)
            if env is not None:
                return env
        # Something is wrong with it: again with line maps, for the findings' lines.
        data = self.catalog.source.read(path)
        if data is None:
            return None
        try:
            raw = yamlio.load(data, file=path)
        except EnvctlError as exc:
            self.findings.append(exc)
            self.unreadable.add(name)
            return None
        return self.parse_env(name, path, raw, data)

    def parse_clean(self, name: EnvName, path: str, data: bytes, raw: Any) -> _Env | None:
        """The environment when ``raw`` (loaded without line maps) is valid throughout;
        None when anything is wrong with it, for :meth:`parse_env` to tell what."""
        tags_raw = raw.get("tags") if isinstance(raw, dict) else None
        if not isinstance(tags_raw, dict) or not all(
            spec is not None and is_valid_tag(tag) for tag, spec in tags_raw.items()
        ):
            return None
        try:
            env = parse_env_file(raw, file=path)
        except EnvctlError:
            return None
        return _Env(name, path, data, dict(env.tags), set(tags_raw))

    def parse_env(self, name: EnvName, path: str, raw: Any, data: bytes) -> _Env:
        if not isinstance(raw, dict):
            self.add(
                f"{path} is not a mapping (description, owners, tags)", file=path,
                line=getattr(raw, "line", None), rule="schema",
                fix="see 'envctl new --help' for the file format",
            )
            return _Env(name, path, data, {}, set(), loaded=raw)
        tags_raw = raw.get("tags")
        declared = set(tags_raw) if isinstance(tags_raw, dict) else set()
        to_validate = raw
        dropped: set[str] = set()
        if isinstance(tags_raw, dict):
            for tag, spec in tags_raw.items():
                if not is_valid_tag(tag):
                    # The tag's own rule (upper case, a ':'...), not the schema's generic one.
                    try:
                        parse_tag(tag)
                    except EnvctlError as exc:
                        self.add(f"tag {tag}: {exc.message}", file=path,
                                 line=tags_raw.key_lines.get(tag), rule=exc.rule, fix=exc.fix)
                        dropped.add(tag)
                        continue
                if spec is None:
                    self.add(
                        f"tag {tag} is empty", file=path, line=tags_raw.key_lines.get(tag),
                        tag=tag, rule="schema",
                        fix="give it dependencies, or 'points_to: <tag>' for a pointer",
                    )
                    dropped.add(tag)
            if dropped:
                to_validate = _without_tags(raw, dropped)
        try:
            env = parse_env_file(to_validate, file=path)
        except EnvctlError as exc:
            if not (dropped and _only_empty_tags(exc)):
                self.extend(exc)
        else:
            return _Env(name, path, data, dict(env.tags), declared)
        # Keep the tags that are valid on their own, so cross-references are still checked.
        tags: dict[str, AnyTag] = {}
        if isinstance(tags_raw, dict):
            for tag, spec in tags_raw.items():
                if spec is None or not is_valid_tag(tag):
                    continue
                try:
                    tags[tag] = _tag_adapter().validate_python(spec)
                except (ValidationError, EnvctlError):
                    continue
        return _Env(name, path, data, tags, declared, loaded=raw)

    # -- one environment -----------------------------------------------------------------

    def check_env(self, env: _Env) -> None:
        self.check_near_duplicates([(t, env.file, None) for t in env.tags], "tag", env)
        for tag, spec in env.tags.items():
            if isinstance(spec, PointerTag):
                self.check_pointer(env, tag, spec)
            else:
                self.check_concrete(env, tag, spec)

    def check_pointer(self, env: _Env, tag: str, spec: PointerTag) -> None:
        line = partial(env.tag_line, tag, "points_to")
        target = spec.points_to
        if not self.config.is_mutable(tag):
            self.add(
                f"tag {tag} is immutable, so it cannot be a pointer (points_to: {target})",
                file=env.file, line=line, tag=tag, rule="immutable-pointer",
                fix=f"give {tag} its own spec (e.g. 'extends: {target}' plus dependencies), "
                f"or use a mutable tag for the pointer ({', '.join(self.config.mutable_tags)})",
            )
        if target not in env.declared:
            self.add(
                f"tag {tag} points to {target}, which {env.name} does not declare",
                file=env.file, line=line, tag=tag, rule="pointer-target-missing",
                fix=_choose_from(target, _immutable_concrete(env, self.config)),
            )
            return
        target_spec = env.tags.get(target)
        if target_spec is None:
            return  # the target has its own schema finding
        if isinstance(target_spec, PointerTag):
            what = "itself" if target == tag else f"{target}, which is a pointer too"
            self.add(
                f"tag {tag} points to {what}; pointers cannot chain",
                file=env.file, line=line, tag=tag, rule="pointer-chain",
                fix=f"point {tag} at a concrete immutable tag"
                + (f" (e.g. {target_spec.points_to})" if target != tag else ""),
            )
        elif self.config.is_mutable(target):
            # Unless the target was locked as an immutable tag: then the config is what is
            # wrong (immutable-stays-immutable). Known once the metas are read.
            self.mutable_pointers.append((env, tag, spec))
        elif target_spec.retired:
            self.add(
                f"tag {tag} points to {target}, which is retired",
                file=env.file, line=line, tag=tag, rule="pointer-to-retired",
                fix="point it at a tag that is not retired",
            )

    def check_concrete(self, env: _Env, tag: str, spec: ConcreteTag) -> None:
        chain = self.check_extends(env, tag, spec)
        platforms, channels = chain.platforms, chain.channels
        if self.config_ok and not self.config.pypi_index and chain.has_pypi and not (
            chain.pypi_options and chain.pypi_options.index_url
        ):
            self.add(
                f"tag {tag} has PyPI requirements but no index to resolve them from",
                file=env.file, line=env.tag_line(tag, "pypi" if spec.pypi else None), tag=tag,
                rule="no-pypi-index",
                fix=f"set 'pypi_index:' in {CONFIG_FILE} (or 'pypi_options: {{index_url: ...}}' "
                "on the tag)",
            )
        channels = channels or self.config.effective_default_channels
        platforms = platforms or list(self.config.platforms)
        known = tuple(self.config.channels) if self.config_ok else None
        for i, channel in enumerate(spec.channels or []):
            if known is not None and channel not in known:
                self.add(
                    f"tag {tag} uses channel {channel!r}, which catalog.yaml does not declare",
                    file=env.file, line=env.tag_line(tag, "channels", i), tag=tag,
                    rule="unknown-channel",
                    fix=f"declare it under 'channels:' in {CONFIG_FILE} or use one of: "
                    f"{', '.join(known) or '(none declared)'}",
                )
        if self.config_ok and not channels and (spec.dependencies or spec.target):
            self.add(
                f"tag {tag} has no channels: neither the tag nor catalog.yaml names one",
                file=env.file, line=env.tag_line(tag), tag=tag, rule="no-channels",
                fix=f"declare channels in {CONFIG_FILE}, or list them under the tag",
            )
        if not (spec.dependencies or spec.pypi or spec.extends or spec.target):
            self.add(
                f"tag {tag} requests nothing", file=env.file, line=env.tag_line(tag), tag=tag,
                rule="empty-tag",
                fix="add 'dependencies: [...]', or 'points_to: <tag>' for a pointer",
            )
        self.check_requirements(env, tag, spec.dependencies, spec.pypi, known, None)
        target_lines = env.tag_raw(tag).get("target") if spec.target and env.tag_raw(tag) else None
        for platform, extra in spec.target.items():
            line = getattr(target_lines, "key_lines", {}).get(platform, env.tag_line(tag, "target"))
            if platform not in platforms:
                self.add(
                    f"tag {tag} has target {platform}, which is not one of its platforms "
                    f"({', '.join(platforms)})",
                    file=env.file, line=line, tag=tag, rule="target-platform",
                    fix=f"add {platform} to the tag's platforms, or remove target.{platform}",
                )
            node = target_lines.get(platform) if isinstance(target_lines, dict) else None
            self.check_requirements(env, tag, extra.dependencies, extra.pypi, known, node)

    def check_requirements(
        self, env: _Env, tag: str, conda: list[str], pypi: list[str],
        channels: tuple[str, ...] | None, node: Any,
    ) -> None:
        """``node``: the raw mapping holding the lists when not the tag's own (a target)."""

        def line(key: str, i: int) -> int | None:
            if node is None:
                return env.tag_line(tag, key, i)
            items = getattr(node.get(key), "item_lines", [])
            return items[i] if i < len(items) else getattr(node, "line", None)

        for key, values in (("dependencies", conda), ("pypi", pypi)):
            for i, text in enumerate(values):
                if key == "dependencies":
                    message, rule, fix = _conda_problem(text, channels)
                else:
                    message, rule, fix = _pypi_problem(text)
                if message:
                    self.add(f"tag {tag}: {message}", file=env.file, line=line(key, i),
                             tag=tag, rule=rule, fix=fix)

    def check_extends(self, env: _Env, tag: str, spec: ConcreteTag) -> _Chain:
        """Walk the extends chain: report a missing, pointer or cyclic first base.

        Returns what the chain sets (platforms and channels None when nothing sets them).
        Problems further down the chain are reported at the tag that has them.
        """
        if not spec.extends:  # most tags: nothing to walk
            return _Chain(platforms=spec.platforms, channels=spec.channels, specs=[spec])
        add = self.add
        start = Alias(env.name, tag)
        platforms, channels = spec.platforms, spec.channels
        chain = _Chain(specs=[spec])
        seen = {start}
        current, current_spec = start, spec
        first = True
        line = partial(env.tag_line, tag, "extends")
        while current_spec.extends:
            base = base_alias(current, current_spec.extends)
            base_env = self.envs.get(base.name)
            if base in seen:
                if base == start:
                    add(
                        f"tag {tag} extends {current_spec.extends}, which leads back to "
                        f"{start}: extends forms a cycle",
                        file=env.file, line=line, tag=tag, rule="extends-cycle",
                        fix="extend a tag that does not extend this one",
                    )
                break
            seen.add(base)
            if base_env is None or base.tag not in base_env.declared:
                if first and base.name not in self.unreadable:
                    missing = (
                        f"environment {base.name}" if base_env is None
                        else f"{base.name} has no tag {base.tag}"
                    )
                    add(
                        f"tag {tag} extends {current_spec.extends}, which does not exist "
                        f"({missing})",
                        file=env.file, line=line, tag=tag, rule="extends-missing",
                        fix="extend a tag that exists"
                        + (f": {', '.join(sorted(base_env.tags))}" if base_env else ""),
                    )
                break
            base_spec = base_env.tags.get(base.tag)
            if base_spec is None:
                break  # broken base: it has its own schema finding
            if isinstance(base_spec, PointerTag):
                if first:
                    add(
                        f"tag {tag} extends {current_spec.extends}, which is a pointer; "
                        "extends must name a concrete tag",
                        file=env.file, line=line, tag=tag, rule="extends-pointer",
                        fix=f"extend the tag it points to: {base_spec.points_to}",
                    )
                break
            platforms = platforms or base_spec.platforms
            channels = channels or base_spec.channels
            chain.specs.append(base_spec)
            current, current_spec, first = base, base_spec, False
        chain.platforms, chain.channels = platforms, channels
        return chain

    # -- near duplicates -----------------------------------------------------------------

    def check_near_duplicates(
        self, items: Iterable[tuple[str, str, int | None]], what: str, env: _Env | None
    ) -> None:
        seen: dict[str, str] = {}
        for text, file, line in items:
            key = canonical_key(text)
            other = seen.setdefault(key, text)
            if other != text:
                where = f" in {env.name}" if env else ""
                if env is not None and line is None:
                    line = env.tag_line(text)  # only now: it loads the file's line maps
                self.add(
                    f"{what} {text} differs from {what} {other}{where} only by case or "
                    "'-', '_', '.'",
                    file=file, line=line, tag=text if env else None,
                    rule=f"near-duplicate-{'tag' if env else 'name'}",
                    fix=f"use {other}, or pick a clearly different {what} name",
                )

    # -- locks/ --------------------------------------------------------------------------

    def check_locks(self, entries: list[Entry], workers: _Workers) -> None:
        # Keyed by (lock folder, tag) strings, not Alias: building, hashing and comparing
        # 130,000 dataclasses was most of this loop on a large catalog.
        locks: dict[tuple[str, str], str] = {}
        metas: dict[tuple[str, str], tuple[str, EnvName]] = {}
        self.lock_dirs = {str(env.name.lock_dir): env for env in self.envs.values()}
        for entry in entries:
            if _is_keep_file(entry):
                continue
            if not self.check_entry_kind(entry):
                continue
            found = self.lock_entry(entry)
            if found is None:
                continue
            name, tag, is_meta = found
            folder = entry.path.rpartition("/")[0]
            if is_meta:
                metas[folder, tag] = entry.path, name
            else:
                locks[folder, tag] = entry.path
        for key in sorted(locks.keys() - metas.keys()):
            folder, tag = key
            self.add(
                f"{locks[key]} has no meta beside it ({folder}/{tag}{META_FILE_SUFFIX})",
                file=locks[key], rule="incomplete-lock", tag=tag,
                fix="CI writes both together: let CI re-lock the tag, or delete the lock",
            )
        for key, (path, name) in sorted(metas.items()):
            folder, tag = key
            if key not in locks:
                self.add(
                    f"{path} has no lockfile beside it ({folder}/{tag}{LOCK_FILE_SUFFIX})",
                    file=path, rule="incomplete-lock", tag=tag,
                    fix="CI writes both together: let CI re-lock the tag, or delete the meta",
                )
            result = workers.result(path)
            if result is None:  # not handed to a worker (or no workers): check it here
                found, summary = meta_summary(self.catalog.source, path, f"{name}:{tag}")
            else:  # pickled by chunk: a chunk's repeated parts arrive shared already
                found, summary = result
            self.findings.extend(found)
            if key in locks and summary is not None:
                self.locked[path] = summary  # by path: no Alias kept per locked tag

    # -- locked tags -----------------------------------------------------------------------

    def check_locked_tags(self) -> None:
        """The push-time rules for tags with a lock and a meta (see the module doc)."""
        flipped: list[Alias] = []
        mutable_tags: dict[str, bool] = {}
        for path, summary in self.locked.items():  # in path order (check_locks)
            folder, _, filename = path.rpartition("/")
            tag = filename[: -len(META_FILE_SUFFIX)]
            mutable = mutable_tags.get(tag)
            if mutable is None:
                mutable = mutable_tags[tag] = self.config.is_mutable(tag)
            if mutable and summary.exclude_newer is None:
                continue  # a rolling tag: CI re-resolves it at will
            env = self.lock_dirs.get(folder)
            if mutable and env is not None:
                flipped.append(Alias(env.name, tag))
            spec = env.tags.get(tag) if env is not None else None
            if env is None or not isinstance(spec, ConcreteTag):
                continue
            chain = self.chain_of(env, tag, spec)
            changes = self.frozen_changes(env, tag, path, spec, chain, summary)
            if changes:
                from envctl.policy import next_tag

                self.add(
                    f"tag {tag} was changed after CI locked it ({path} records what it was "
                    f"locked for): {'; '.join(changes)}",
                    file=env.file, line=partial(env.tag_line, tag), tag=tag,
                    rule="frozen-tag-changed",
                    fix=f"revert it and add a new tag (envctl bump {env.name}:{tag} --to "
                    f"{next_tag(env.declared)})",
                )
        if flipped and self.config_ok:
            shown = ", ".join(str(a) for a in flipped[:5]) + (
                f" and {len(flipped) - 5} more" if len(flipped) > 5 else "")
            raw = self.catalog.read_yaml(CONFIG_FILE)
            self.add(
                f"mutable_tags would make frozen tag(s) mutable: {shown}; a tag that was "
                "immutable stays immutable (the server refuses this change)",
                file=CONFIG_FILE, line=getattr(raw, "key_lines", {}).get("mutable_tags"),
                rule="immutable-stays-immutable",
                fix="narrow the pattern so it matches no locked immutable tag (e.g. 'dev-*')",
            )
        for env, tag, spec in self.mutable_pointers:
            target = spec.points_to
            locked = self.locked.get(f"{env.name.lock_dir}/{target}{META_FILE_SUFFIX}")
            line = partial(env.tag_line, tag, "points_to")
            if locked is not None and locked.exclude_newer is not None:
                # Locked as immutable: the config is what is wrong (reported above).
                target_spec = env.tags.get(target)
                if isinstance(target_spec, ConcreteTag) and target_spec.retired:
                    self.add(
                        f"tag {tag} points to {target}, which is retired",
                        file=env.file, line=line, tag=tag, rule="pointer-to-retired",
                        fix="point it at a tag that is not retired",
                    )
                continue
            self.add(
                f"tag {tag} points to {target}, which is a mutable tag",
                file=env.file, line=line, tag=tag, rule="pointer-to-mutable",
                fix=_choose_from(None, _immutable_concrete(env, self.config),
                                 "point it at an immutable tag"),
            )

    def chain_of(self, env: _Env, tag: str, spec: ConcreteTag) -> _Chain:
        """What check_extends returns, without its findings (reported already) and without
        building an Alias per step: lint walks it again for every locked tag."""
        chain = _Chain(platforms=spec.platforms, channels=spec.channels, specs=[spec])
        name, current = env.name, spec
        seen = {(name, tag)}
        while current.extends:
            key = (name, current.extends) if ":" not in current.extends else _other_env_base(
                current.extends)
            base_env = self.envs.get(key[0])
            base_spec = base_env.tags.get(key[1]) if base_env is not None else None
            if key in seen or not isinstance(base_spec, ConcreteTag):
                break
            seen.add(key)
            chain.platforms = chain.platforms or base_spec.platforms
            chain.channels = chain.channels or base_spec.channels
            chain.specs.append(base_spec)
            name, current = key[0], base_spec
        return chain

    def frozen_changes(
        self, env: _Env, tag: str, meta_path: str, spec: ConcreteTag, chain: _Chain,
        summary: MetaSummary,
    ) -> list[str]:
        """How the tag's own text differs from the request its meta records ([] if it does
        not). Requirements are compared in the resolver's normal form (what the req_id
        hashes); channels, platforms and virtual packages only where the tag or its bases
        set them, since a later change of catalog.yaml's defaults never changes a frozen
        tag. An invalid requirement is reported as such, not as a change."""
        changes: list[str] = []
        if chain.platforms is not None and sorted(chain.platforms) != [
            r.platform for r in summary.platforms
        ]:
            changes.append(f"platforms are {', '.join(chain.platforms)}, locked for "
                           f"{', '.join(r.platform for r in summary.platforms)}")
        if spec.extends or summary.base:
            extends = spec.extends
            base = (extends if ":" in extends else f"{env.name}:{extends}") if extends else None
            if base != summary.base:
                changes.append(f"it extends {base or 'nothing'}, locked on "
                               f"{summary.base or 'no base'}")
        wanted: list[tuple[list[str], list[str]]] = []
        own = _own_requirements(spec, None) if not spec.target else None
        for rec in summary.platforms:
            requirements = own or _own_requirements(spec, rec.platform)
            if requirements is None:
                return []  # an invalid requirement: its own finding
            wanted.append(requirements)
        if requirements_digest(wanted) != summary.requirements:
            changes.extend(self.requirement_changes(meta_path, summary, wanted))
        for rec in summary.platforms:
            platform = rec.platform
            found: list[str] = []
            if chain.channels is not None and tuple(chain.channels) != rec.channels:
                found.append(f"channels are {', '.join(chain.channels)}, locked with "
                             f"{', '.join(rec.channels)}")
            if chain.has_virtual:
                virtual = dict(rec.virtual_packages)
                for name, value in sorted(chain.virtual_packages(platform).items()):
                    if virtual.get(name) != value:
                        found.append(f"virtual package {name}={value} on {platform}, locked "
                                     f"with {name}={virtual.get(name, '(none)')}")
            changes.extend(text for text in found if text not in changes)
        return changes

    def requirement_changes(
        self, path: str, summary: MetaSummary, wanted: list[tuple[list[str], list[str]]]
    ) -> list[str]:
        """What differs from the recorded requirements (the meta is read again: rare)."""
        data = self.catalog.source.read(path)
        try:
            meta = load_meta(data or b"", file=path)
        except EnvctlError:
            return ["its requirements"]
        out: list[str] = []
        for rec, (conda, pypi) in zip(summary.platforms, wanted, strict=True):
            request = meta.platforms[rec.platform].request
            for label, now, locked in (("dependencies", conda, request.dependencies),
                                       ("pypi", pypi, request.pypi)):
                if list(now) != list(locked):
                    text = _difference(label, now, tuple(locked))
                    if text not in out:
                        out.append(text)
        return out

    def lock_entry(self, entry: Entry) -> tuple[EnvName, str, bool] | None:
        """(environment, tag, is_meta) for a lock or meta of a declared concrete tag."""
        path = entry.path
        folder, _, filename = path.rpartition("/")
        if filename.endswith(LOCK_FILE_SUFFIX):
            tag, is_meta, limit = filename[: -len(LOCK_FILE_SUFFIX)], False, yamlio.MAX_LOCK_BYTES
        elif filename.endswith(META_FILE_SUFFIX):
            tag, is_meta, limit = filename[: -len(META_FILE_SUFFIX)], True, yamlio.MAX_BYTES
        else:
            self.add(
                f"{path} is neither a lockfile (<tag>{LOCK_FILE_SUFFIX}) nor a meta "
                f"(<tag>{META_FILE_SUFFIX})",
                file=path, rule="unexpected-file",
                fix="locks/ holds only what CI writes; delete or move this file",
            )
            return None
        try:
            # Known folders first: parsing a name per file would dominate on a large catalog.
            known = self.lock_dirs.get(folder)
            name = known.name if known else parse_env_name(folder[len(LOCKS_DIR) + 1 :])
            if not is_valid_tag(tag):
                parse_tag(tag)  # raises, with the reason
        except InvalidNameError as exc:
            self.add(
                f"{path} does not belong to a valid environment and tag: {exc.message}",
                file=path, rule="orphan-lock", fix="delete it",
            )
            return None
        env = self.lock_dirs.get(folder)
        if env is None:
            env = self.envs.get(name)
        problem = None
        if env is None:
            if name not in self.unreadable:
                problem = f"environment {name} does not exist ({name.env_file})"
        elif tag not in env.declared:
            problem = f"{name} declares no tag {tag}"
        elif isinstance(env.tags.get(tag), PointerTag):
            problem = f"{name}:{tag} is a pointer, and pointers have no lock"
        if problem:
            self.add(
                f"{path} belongs to no declared tag: {problem}",
                file=path, tag=tag, rule="orphan-lock",
                fix="delete it, or restore the tag it was written for",
            )
            return None
        if entry.size is not None and entry.size > limit:
            self.add(
                f"file is {entry.size} bytes, over the {limit}-byte limit",
                file=path, tag=tag, rule="file-too-large", fix="re-lock with fewer packages",
            )
            return None
        return name, tag, is_meta


# -- environments and metas, in parallel ---------------------------------------------------

_META_CHUNK = 400

MetaResult = tuple[list[EnvctlError], "MetaSummary | None"]


def meta_summary(source: Source, path: str, alias: str) -> MetaResult:
    """(problems, summary) of the meta at ``path``; the summary when the meta is valid and
    describes ``alias``, for the frozen-tag rules."""
    data = source.read(path)
    if data is None:
        return [], None
    try:
        # CI wrote it and it is almost always valid: JSON first, then YAML without line
        # maps, and only for a finding with them.
        raw = fast_json(data)
        if raw is None:
            raw = yamlio.load(data, file=path, lines=False)
        meta = parse_meta(raw, file=path)
    except EnvctlError:
        try:  # again with line maps, so that each finding names its line
            raw = yamlio.load(data, file=path)
            meta = parse_meta(raw, file=path)
        except EnvctlError as exc:
            return (list(exc.errors) if isinstance(exc, MultipleErrors) else [exc]), None
    if meta.alias == alias:
        return [], _summary(meta)
    line = raw.key_lines.get("alias") if isinstance(raw, yamlio.YamlMap) else None
    if line is None:
        # For the line of "alias:"; the finding stands without one.
        with contextlib.suppress(EnvctlError):
            line = yamlio.load(data, file=path).key_lines.get("alias")
    return [
        CatalogError(
            f"{path} says it is for {meta.alias}, but it lies at the path of {alias}",
            file=path, line=line, tag=alias.rpartition(":")[2],
            rule="meta-alias-mismatch",
            fix="CI writes metas; restore the file from the commit that locked the tag",
        )
    ], None


def _worker_metas(
    jobs: list[tuple[str, str]]
) -> list[tuple[str, list[EnvctlError] | MetaSummary]]:
    """Per meta its problems, or its summary when it has none: what lint keeps of all the
    metas of a large catalog passes through one pipe at once, so as little as it can."""
    source = forkpool.Prefetched(forkpool.worker_source(), [path for path, _ in jobs])
    out: list[tuple[str, list[EnvctlError] | MetaSummary]] = []
    for path, alias in jobs:
        found, summary = meta_summary(source, path, alias)
        out.append((path, summary if summary is not None else found))
    return out


class _Workers:
    """Environment files and metas parsed in worker processes (forked before anything is
    read, while this process is small). Without workers (a small catalog, one CPU, a
    source that cannot fork) every file is parsed here, the same way.

    Every meta under locks/ is handed out, before lint knows which belong to a declared
    tag; ``check_locks`` asks only for those, so the others' results are dropped.
    """

    def __init__(self, pool: Any = None, env_results: Any = None,
                 meta_results: Any = None) -> None:
        self._pool = pool
        self._env_results = env_results
        self._pending = meta_results
        self._results: dict[str, list[EnvctlError] | MetaSummary] | None = (
            None if pool else {})

    @classmethod
    def start(cls, source: Source, env_entries: list[Entry]) -> _Workers:
        """Workers parsing the environment files, started before locks/ is even listed.
        Only regular .yaml files within the size limit are sent (None: lint reads and
        reports the others itself)."""
        pool = forkpool.start_pool(source, len(env_entries))
        if pool is None:
            return cls()
        paths = [entry.path if entry.kind == "file" and entry.path.endswith(".yaml")
                 and (entry.size or 0) <= yamlio.MAX_BYTES else None for entry in env_entries]
        return cls(pool, forkpool.read_in(pool, source, paths))

    def add_metas(self, lock_entries: list[Entry]) -> None:
        """Queue every meta, after the environments (this process needs those first)."""
        if self._pool is None:
            return
        jobs = []
        for entry in lock_entries:
            folder, _, filename = entry.path.rpartition("/")
            if (entry.kind == "file" and filename.endswith(META_FILE_SUFFIX)
                    and (entry.size or 0) <= yamlio.MAX_BYTES):
                alias = f"{folder[len(LOCKS_DIR) + 1:]}:{filename[: -len(META_FILE_SUFFIX)]}"
                jobs.append((entry.path, alias))
        self._pending = forkpool.results(self._pool, _worker_metas,
                                         forkpool.chunks(jobs, _META_CHUNK))

    def envs(self, entries: list[Entry]) -> Iterable[tuple[Entry, forkpool.Parsed | None]]:
        """Each entry with what a worker read of it (None: read it here), in order."""
        if self._env_results is None:
            for entry in entries:
                yield entry, None
            return
        yield from zip(entries, self._env_results, strict=True)

    def result(self, path: str) -> MetaResult | None:
        if self._results is None:
            # Each chunk as it arrives, its repeated parts shared again (pickle shares them
            # only within a chunk): holding every chunk as sent took 50 MB at 67,000 metas.
            self._results = {}
            try:
                for chunk in self._pending or ():
                    self._results.update((p, _compact(found)) for p, found in chunk)
            except BrokenProcessPool:
                pass  # a worker died: check_locks checks the metas it did not answer
        found = self._results.get(path)
        if found is None:
            return None
        return ([], found) if isinstance(found, MetaSummary) else (found, None)

    def drop(self) -> None:
        """Forget the workers' answers (lint keeps what it needs of them)."""
        self._results = {}

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        forkpool.stop(self._pool)  # a lint stopped early must not leave work queued


def _compact(found: list[EnvctlError] | MetaSummary) -> list[EnvctlError] | MetaSummary:
    if not isinstance(found, MetaSummary):
        return found
    return found._replace(base=_shared(found.base), exclude_newer=_shared(found.exclude_newer),
                          platforms=_shared(found.platforms))


@lru_cache(maxsize=1 << 12)
def _other_env_base(extends: str) -> tuple[EnvName, str]:
    alias = base_alias(Alias(EnvName(("x",)), "x"), extends)
    return alias.name, alias.tag


def _own_requirements(
    spec: ConcreteTag, platform: str | None
) -> tuple[list[str], list[str]] | None:
    """The tag's own dependencies and PyPI requirements on ``platform`` (its target's too), in
    the request's form: normalised, deduplicated, sorted. None if one does not parse."""
    target = spec.target.get(platform) if platform is not None else None
    conda = [_conda_normal(t) for t in (*spec.dependencies, *(target.dependencies if target
                                                               else ()))]
    pypi = [_pypi_normal(t) for t in (*spec.pypi, *(target.pypi if target else ()))]
    if None in conda or None in pypi:
        return None
    return sorted(set(conda)), sorted(set(pypi))  # type: ignore[arg-type]


def _difference(label: str, now: list[str], locked: tuple[str, ...]) -> str:
    added = [t for t in now if t not in locked]
    dropped = [t for t in locked if t not in now]
    parts = []
    if added:
        parts.append("add " + ", ".join(repr(t) for t in added))
    if dropped:
        parts.append("drop " + ", ".join(repr(t) for t in dropped))
    return f"{label} {' and '.join(parts)}"


def _is_keep_file(entry: Entry) -> bool:
    # 'envctl init' commits envs/.gitkeep and locks/.gitkeep so git keeps the empty folders.
    return entry.kind == "file" and entry.path.rpartition("/")[2] == ".gitkeep"


def _only_empty_tags(exc: EnvctlError) -> bool:
    """Whether the schema's only complaint is a ``tags:`` emptied by dropping broken tags."""
    errors = exc.errors if isinstance(exc, MultipleErrors) else [exc]
    return all("at least one tag" in e.message for e in errors)


def _without_tags(raw: Any, dropped: set[str]) -> Any:
    """A copy of ``raw`` without the ``dropped`` tags, keeping the line maps."""
    tags = raw["tags"]
    kept = yamlio.YamlMap({k: v for k, v in tags.items() if k not in dropped})
    kept.key_lines = dict(tags.key_lines)
    kept.line = tags.line
    copy = yamlio.YamlMap(raw)
    copy["tags"] = kept
    copy.key_lines = dict(raw.key_lines)
    copy.line = raw.line
    return copy


def _immutable_concrete(env: _Env, config: CatalogConfig) -> list[str]:
    return [
        t for t, s in env.tags.items()
        if isinstance(s, ConcreteTag) and not config.is_mutable(t) and not s.retired
    ]


def _choose_from(wrong: str | None, choices: list[str], otherwise: str = "") -> str:
    import difflib

    if wrong:
        close = difflib.get_close_matches(wrong, choices, n=1)
        if close:
            return f"did you mean {close[0]}?"
    if choices:
        return f"{otherwise or 'point it at one of'}: {', '.join(choices)}"
    return otherwise or "add the immutable tag first, then point at it"
