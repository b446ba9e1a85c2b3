"""conda-lock v1 lockfiles: the writer (through conda-lock's own models) and a fast reader.

One lockfile per tag holds every platform. envctl writes it deterministically:
packages sorted like conda-lock's writer sorts them (manager, name, platform),
dependencies sorted, no timestamps or user names (those go to ``meta.yaml``), so
the same solve gives the same bytes on any machine and any day.

Where envctl puts its own facts, inside fields conda-lock defines:

- ``metadata.content_hash[<platform>]`` is the platform's ``req_id`` (conda-lock's
  field means "hash of the request for this platform", which is what req_id is);
- ``metadata.custom_metadata`` holds ``envctl.alias`` and ``envctl.full_id.<platform>``,
  so a lockfile found alone (in the artifact store) still tells its ids.

:func:`read_lock` is for hot paths (hook, lint, show): it parses with envctl's
C-accelerated safe loader and never imports conda-lock (~0.3 s) or pydantic
models. Tests check it against conda-lock's parser on every lockfile they write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from envctl.errors import LockfileError
from envctl.resolve.ids import full_id

LOCK_VERSION = "1"
ALIAS_KEY = "envctl.alias"
FULL_ID_KEY_PREFIX = "envctl.full_id."

Manager = Literal["conda", "pip"]


@dataclass(frozen=True)
class LockedPackage:
    """One package a lock installs on one platform.

    ``dependencies`` is a sorted tuple of (name, constraint) pairs rather than a dict
    so that the object stays hashable and its order stays fixed.
    """

    manager: Manager
    name: str
    version: str
    platform: str
    url: str
    sha256: str | None
    md5: str | None = None
    build: str | None = None
    dependencies: tuple[tuple[str, str], ...] = ()
    categories: tuple[str, ...] = ("main",)

    @property
    def filename(self) -> str:
        """The file's name: the last segment of its URL."""
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])

    @property
    def subdir(self) -> str | None:
        """For a conda package, the channel subdir it came from (``noarch``, ``linux-64``)."""
        if self.manager != "conda":
            return None
        parts = urlsplit(self.url).path.rstrip("/").split("/")
        return unquote(parts[-2]) if len(parts) >= 2 else None

    @property
    def key(self) -> tuple[str, str, str]:
        """conda-lock's identity of an entry: (manager, name, platform)."""
        return (self.manager, self.name, self.platform)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "platform": self.platform,
            "url": self.url,
            "filename": self.filename,
            "md5": self.md5,
            "sha256": self.sha256,
            "dependencies": dict(self.dependencies),
        }


@dataclass(frozen=True)
class LockData:
    """What a conda-lock v1 file says, in the shape envctl needs."""

    platforms: tuple[str, ...]
    channels: tuple[str, ...]
    packages: tuple[LockedPackage, ...]
    content_hash: Mapping[str, str] = field(default_factory=dict)
    custom_metadata: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def for_platform(self, platform: str) -> tuple[LockedPackage, ...]:
        return tuple(p for p in self.packages if p.platform == platform)

    def conda(self, platform: str) -> tuple[LockedPackage, ...]:
        return tuple(p for p in self.for_platform(platform) if p.manager == "conda")

    def pypi(self, platform: str) -> tuple[LockedPackage, ...]:
        return tuple(p for p in self.for_platform(platform) if p.manager == "pip")

    @property
    def alias(self) -> str | None:
        return self.custom_metadata.get(ALIAS_KEY)

    def req_id(self, platform: str) -> str | None:
        """The req_id recorded for ``platform`` (conda-lock's content_hash)."""
        return self.content_hash.get(platform)

    def recorded_full_id(self, platform: str) -> str | None:
        return self.custom_metadata.get(FULL_ID_KEY_PREFIX + platform)

    def full_id(self, platform: str) -> str:
        """full_id computed from the packages (not read from metadata), so it can be checked."""
        packages = self.for_platform(platform)
        missing = [p.filename for p in packages if not p.sha256]
        if missing:
            raise LockfileError(
                f"no sha256 for {', '.join(missing[:5])} on {platform}",
                rule="missing-sha256",
                fix="re-resolve the tag with envctl, which records a sha256 for every package",
            )
        return full_id(platform, packages)  # type: ignore[arg-type]


# -- reading ----------------------------------------------------------------------------


def _fail(file: str, message: str) -> LockfileError:
    return LockfileError(
        message, file=file, fix="re-create it with 'envctl resolve' (conda-lock v1 format)"
    )


def _text(value: object, what: str, file: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(file, f"{what} must be a non-empty string")
    return value


def _opt_text(value: object, what: str, file: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(file, f"{what} must be a string")
    return value


def _str_map(value: object, what: str, file: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(file, f"{what} must be a mapping")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def read_lock(data: bytes | str, *, file: str = "<lockfile>") -> LockData:
    """Parse a conda-lock v1 file without conda-lock. Raises :class:`LockfileError`.

    Entries repeated for several categories (conda-lock v1 writes one entry per
    category) are merged, as conda-lock's parser does.
    """
    from envctl import yamlio

    doc = yamlio.load(data, file=file, max_bytes=yamlio.MAX_LOCK_BYTES, lines=False)
    version = doc.get("version")
    if version != LOCK_VERSION:
        raise _fail(
            file,
            "not a conda-lock lockfile (no version)"
            if version is None
            else f"conda-lock lockfile version {version!r} is not supported (envctl reads v1)",
        )
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise _fail(file, "metadata must be a mapping")
    channels = []
    for entry in meta.get("channels") or []:
        url = entry.get("url") if isinstance(entry, dict) else entry
        channels.append(_text(url, "metadata.channels[].url", file))
    platforms = meta.get("platforms") or []
    if not isinstance(platforms, list):
        raise _fail(file, "metadata.platforms must be a list")
    sources = meta.get("sources") or []
    raw_packages = doc.get("package")
    if not isinstance(raw_packages, list):
        raise _fail(file, "package must be a list")

    merged: dict[tuple[str, str, str], LockedPackage] = {}
    for index, raw in enumerate(raw_packages):
        where = f"package[{index}]"
        if not isinstance(raw, dict):
            raise _fail(file, f"{where} must be a mapping")
        manager = raw.get("manager")
        if manager not in ("conda", "pip"):
            raise _fail(file, f"{where}.manager must be conda or pip, not {manager!r}")
        hashes = raw.get("hash")
        if not isinstance(hashes, dict):
            raise _fail(file, f"{where}.hash must be a mapping")
        md5 = _opt_text(hashes.get("md5"), f"{where}.hash.md5", file)
        if manager == "conda" and not md5:
            raise _fail(file, f"{where}: conda packages need an md5 (conda-lock v1)")
        deps = _str_map(raw.get("dependencies"), f"{where}.dependencies", file)
        category = _opt_text(raw.get("category"), f"{where}.category", file) or "main"
        package = LockedPackage(
            manager=manager,
            name=_text(raw.get("name"), f"{where}.name", file),
            version=_text(raw.get("version"), f"{where}.version", file),
            platform=_text(raw.get("platform"), f"{where}.platform", file),
            url=_text(raw.get("url"), f"{where}.url", file),
            sha256=_opt_text(hashes.get("sha256"), f"{where}.hash.sha256", file),
            md5=md5,
            build=_opt_text(raw.get("build"), f"{where}.build", file),
            dependencies=tuple(sorted(deps.items())),
            categories=(category,),
        )
        previous = merged.get(package.key)
        if previous is not None:
            cats = tuple(sorted({*previous.categories, category}))
            package = replace(previous, categories=cats)
        merged[package.key] = package
    return LockData(
        platforms=tuple(str(p) for p in platforms),
        channels=tuple(channels),
        packages=tuple(merged.values()),
        content_hash=_str_map(meta.get("content_hash"), "metadata.content_hash", file),
        custom_metadata=_str_map(meta.get("custom_metadata"), "metadata.custom_metadata", file),
        sources=tuple(str(s) for s in sources),
    )


# -- writing ----------------------------------------------------------------------------


def _header(alias: str) -> str:
    return (
        f"# conda-lock v1 lockfile of {alias}, written by envctl. DO NOT EDIT.\n"
        "# Resolve again with 'envctl resolve'; ids and resolve times are in the\n"
        "# .meta.yaml beside this file.\n"
    )


def sort_key(package: LockedPackage) -> tuple[str, str, str]:
    """conda-lock's own order (its ``alphasort_inplace``): manager, name, platform."""
    return package.key


def write_lock(
    *,
    alias: str,
    platforms: Sequence[str],
    channels: Sequence[str],
    packages: Iterable[LockedPackage],
    req_ids: Mapping[str, str],
    sources: Sequence[str] = (),
) -> bytes:
    """The bytes of a conda-lock v1 file, validated by conda-lock's own v1 model.

    ``channels`` are channel URLs (credentials already removed); ``req_ids`` maps
    each platform to its req_id; full_ids are computed here from the packages.
    """
    from conda_lock.lockfile.v1.models import (  # lazy: conda-lock costs ~0.3 s to import
        HashModel,
        LockMeta,
    )
    from conda_lock.lockfile.v1.models import LockedDependency as V1Dependency
    from conda_lock.lockfile.v1.models import Lockfile as V1Lockfile

    ordered = sorted(packages, key=sort_key)
    keys = [p.key for p in ordered]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise LockfileError(f"{alias}: a package is locked twice: {dupes[0]}", rule="duplicate")
    platform_list = sorted(platforms)
    custom = {ALIAS_KEY: alias}
    for platform in platform_list:
        chosen = [p for p in ordered if p.platform == platform]
        custom[FULL_ID_KEY_PREFIX + platform] = full_id(platform, chosen)  # type: ignore[arg-type]

    model = V1Lockfile(
        package=[
            V1Dependency(
                name=p.name,
                version=p.version,
                manager=p.manager,
                platform=p.platform,
                dependencies=dict(sorted(p.dependencies)),
                url=p.url,
                hash=HashModel(md5=p.md5, sha256=p.sha256),
                build=p.build,
                category="main",
                optional=False,
            )
            for p in ordered
        ],
        metadata=LockMeta(
            content_hash={p: req_ids[p] for p in platform_list},
            channels=list(channels),
            platforms=platform_list,
            sources=list(sources),
            custom_metadata=custom,
        ),
    )
    output = model.dict_for_output()
    return (_header(alias) + dump_yaml(output)).encode("utf-8")


def dump_yaml(data: Any, *, pure: bool = False) -> str:
    """The YAML text PyYAML's ``safe_dump`` writes for ``data`` in conda-lock's layout
    (block style, keys in model order, no line folding), written directly.

    PyYAML's representer is most of a resolve's own cost, so the lockfile's few shapes
    (mappings, lists, printable-ASCII strings, ints, bools) are emitted here with PyYAML's
    own rules for when a string needs quotes; a document with anything else (non-ASCII,
    control characters) is handed to PyYAML whole. Tests check the output against PyYAML's
    pure-Python and libyaml emitters on every lock they write, and on generated strings.
    ``pure=True`` uses PyYAML's pure-Python dumper.
    """
    if pure or not _simple(data):
        import yaml

        return str(
            yaml.dump(
                data,
                Dumper=yaml.SafeDumper,
                sort_keys=False,
                default_flow_style=False,
                allow_unicode=True,
                width=1 << 16,
                line_break="\n",
            )
        )
    lines: list[str] = []
    _emit_node(data, 0, lines, None)
    return "".join(lines)


_LEADING_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")


def _simple(value: Any) -> bool:
    """Only what the direct emitter handles exactly: printable-ASCII strings, ints, bools."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _simple(k) and _simple(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_simple(v) for v in value)
    if isinstance(value, str):
        return value.isascii() and value.isprintable()  # exactly 0x20-0x7E
    return value is None or isinstance(value, bool | int)


def _plain_allowed(text: str) -> bool:
    """PyYAML's ``analyze_scalar`` verdict for a block-context plain scalar (ASCII text)."""
    if not text or text[0] in _LEADING_INDICATORS or text[0] == " " or text[-1] == " ":
        return False
    if text[0] in "-?:" and (len(text) == 1 or text[1] == " "):
        return False
    if text.startswith(("---", "...")) or text.endswith(":"):
        return False
    return ": " not in text and " #" not in text


def _implicitly_str(text: str) -> bool:
    from yaml.nodes import ScalarNode
    from yaml.resolver import Resolver

    return Resolver().resolve(ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


@lru_cache(maxsize=4096)
def _string(text: str) -> str:
    # Cached: a lockfile repeats the same platform, manager and category strings.
    if _plain_allowed(text) and _implicitly_str(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _scalar(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return _string(value)


def _emit_node(value: Any, indent: int, out: list[str], first: str | None) -> None:
    """Append ``value`` as block YAML at ``indent``; ``first`` is the text before its first
    line (``"- "`` for a list item), or None when it starts on a fresh line."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            out.append(f"{first or pad}{{}}\n" if first is not None else "{}\n")
            return
        for index, (key, item) in enumerate(value.items()):
            lead = first if (index == 0 and first is not None) else pad
            name = _scalar(key)
            if isinstance(item, dict) and item:
                out.append(f"{lead}{name}:\n")
                _emit_node(item, indent + 2, out, None)
            elif isinstance(item, list) and item:
                out.append(f"{lead}{name}:\n")
                _emit_list(item, indent, out)
            else:
                out.append(f"{lead}{name}: {_inline(item)}\n")
        return
    if isinstance(value, list):
        _emit_list(value, indent, out)
        return
    out.append(f"{first or pad}{_scalar(value)}\n")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def _emit_list(items: list[Any], indent: int, out: list[str]) -> None:
    """PyYAML puts a block list under a key at the key's own indentation."""
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            _emit_node(item, indent + 2, out, pad + "- ")
        elif isinstance(item, list) and item:
            out.append(f"{pad}-\n")  # not in a lockfile; kept simple and valid
            _emit_list(item, indent + 2, out)
        else:
            out.append(f"{pad}- {_inline(item)}\n")
