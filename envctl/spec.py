"""The environment file model (``envs/<ns>/.../<env>.yaml``), normalisation and ``req_id``.

A file holds every tag of one environment name. A tag is either concrete
(a request: channels, platforms, dependencies, PyPI requirements, maybe
``extends``) or a pointer (``points_to``) at an immutable tag of the same env.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from envctl.config import CatalogConfig, Platform, VirtualPackages, check_virtual_packages
from envctl.errors import CatalogError, EnvctlError, NotFoundError
from envctl.models import Key, StrictModel, YamlBool, validate
from envctl.names import Alias, EnvName, parse_alias, parse_tag

REQUEST_VERSION = "1"


def _as_value_error(exc: EnvctlError) -> ValueError:
    # pydantic only collects ValueError/AssertionError; anything else escapes validation
    # without the file and line, so a bad tag name would hide every other problem.
    return ValueError(f"{exc.message} ({exc.fix})" if exc.fix else exc.message)


def _check_tag(value: str) -> str:
    try:
        parse_tag(value)
    except EnvctlError as exc:
        raise _as_value_error(exc) from None
    return value


def _check_extends(value: str) -> str:
    try:
        if ":" in value:
            parse_alias(value)
        else:
            parse_tag(value)
    except EnvctlError as exc:
        raise _as_value_error(exc) from None
    return value


def _non_empty_items(values: list[str]) -> list[str]:
    for value in values:
        if not value or not value.strip():
            raise ValueError("empty requirement")
    return values


Requirements = Annotated[list[str], AfterValidator(_non_empty_items)]


class PypiOptions(StrictModel):
    """Where the ``pypi:`` part comes from; defaults to the catalog's ``pypi_index``.

    ``exclude_newer`` (default: the catalog's ``pypi_exclude_newer``) says whether the
    tag's cut-off applies to the PyPI part. It sits here, with the index, because whether
    a cut-off can be applied is a property of the index (PEP 700 upload times). Like the
    URLs it is not part of the request, so it changes no id.
    """

    index_url: str | None = None
    extra_index_urls: list[str] = Field(default_factory=list)
    find_links: list[str] = Field(default_factory=list)
    exclude_newer: YamlBool | None = None


class Target(StrictModel):
    """Per-platform additions (pixi's ``target.<platform>``)."""

    dependencies: Requirements = Field(default_factory=list)
    pypi: Requirements = Field(default_factory=list)


class ConcreteTag(StrictModel):
    kind: Literal["concrete"] = Field(default="concrete", exclude=True)
    description: str | None = None
    extends: Annotated[str, AfterValidator(_check_extends)] | None = None
    channels: list[str] | None = None
    platforms: list[Platform] | None = None
    dependencies: Requirements = Field(default_factory=list)
    pypi: Requirements = Field(default_factory=list)
    pypi_options: PypiOptions | None = None
    target: dict[Platform, Target] = Field(default_factory=dict)
    virtual_packages: Annotated[
        dict[str, VirtualPackages], AfterValidator(check_virtual_packages)
    ] = Field(default_factory=dict)
    retired: str | None = None

    @field_validator("channels", "platforms")
    @classmethod
    def _no_duplicates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("must not be empty; leave the key out to inherit the default")
            dupes = sorted({v for v in value if value.count(v) > 1})
            if dupes:
                raise ValueError(f"listed twice: {', '.join(dupes)}")
        return value


class PointerTag(StrictModel):
    kind: Literal["pointer"] = Field(default="pointer", exclude=True)
    points_to: Annotated[str, AfterValidator(_check_tag)]
    description: str | None = None


def _tag_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "pointer" if "points_to" in value else "concrete"
    return getattr(value, "kind", "concrete")


TagSpec = Annotated[
    Annotated[ConcreteTag, Tag("concrete")] | Annotated[PointerTag, Tag("pointer")],
    Discriminator(_tag_kind),
]


class EnvFile(StrictModel):
    description: str = ""
    owners: list[str] = Field(default_factory=list)
    tags: dict[Annotated[str, AfterValidator(_check_tag)], TagSpec]

    @field_validator("tags")
    @classmethod
    def _at_least_one(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("an environment needs at least one tag")
        return value


def parse_env_file(data: object, *, file: str) -> EnvFile:
    tags = data.get("tags") if isinstance(data, dict) else None
    if isinstance(tags, dict):
        for tag, spec in tags.items():
            if spec is None:
                raise CatalogError(
                    f"tag {tag!r} is empty",
                    file=file,
                    line=getattr(tags, "key_lines", {}).get(tag),
                    tag=tag,
                    rule="schema",
                    fix="give it dependencies, or 'points_to: <tag>' for a pointer",
                )
    return validate(EnvFile, data, file=file, fix="see 'envctl new --help' for the file format")


# --- normalisation ------------------------------------------------------------------------


def normalize_conda_spec(text: str, *, channels: Iterable[str] | None = None) -> str:
    """Canonical text of a conda match spec, via rattler's own parser.

    ``channel::pkg`` must name one of the catalog's logical channels, so a
    lock can never pull from a channel the catalog does not know.
    """
    from rattler import MatchSpec  # lazy: rattler costs ~40 ms to import

    try:
        spec = MatchSpec(text.strip())
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise CatalogError(
            f"invalid conda requirement {text!r}: {exc}",
            rule="invalid-requirement",
            fix="write it like 'numpy >=1.26' or 'python=3.11'",
        ) from None
    if spec.name is None:
        raise CatalogError(
            f"conda requirement {text!r} names no package", rule="invalid-requirement"
        )
    if spec.channel is not None and channels is not None:
        allowed = list(channels)
        if spec.channel.name not in allowed:
            raise CatalogError(
                f"requirement {text!r} names channel {spec.channel.name!r}, which catalog.yaml "
                "does not declare",
                rule="unknown-channel",
                fix=f"use one of: {', '.join(allowed) or '(none declared)'}",
            )
    return str(spec)


def normalize_pypi_requirement(text: str) -> str:
    """Canonical PEP 508 text: normalised name, sorted extras and specifiers."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(text.strip())
    except InvalidRequirement as exc:
        raise CatalogError(
            f"invalid PyPI requirement {text!r}: {exc}",
            rule="invalid-requirement",
            fix="write it like 'itsdangerous==2.1.2'",
        ) from None
    out = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        out += f" @ {req.url}"
    elif req.specifier:
        out += str(req.specifier)
    if req.marker:
        out += f"; {req.marker}"
    return out


# --- inheritance and the request ----------------------------------------------------------


class EffectiveSpec(StrictModel):
    """A concrete tag with everything it inherits through ``extends`` filled in."""

    alias: str
    channels: list[str]
    platforms: list[str]
    dependencies: list[str]
    pypi: list[str]
    target: dict[str, Target]
    virtual_packages: dict[str, dict[str, str]]
    pypi_options: PypiOptions | None
    base: str | None = None  # alias of the base tag when the tag extends another


TagLookup = Callable[[Alias], "ConcreteTag | PointerTag"]


def base_alias(alias: Alias, extends: str) -> Alias:
    """``extends: v1`` means the same env; ``extends: ns/env:v3`` another one."""
    if ":" in extends:
        return parse_alias(extends)
    return Alias(alias.name, extends)


def effective_spec(alias: Alias, lookup: TagLookup, config: CatalogConfig) -> EffectiveSpec:
    """Fill in channels, platforms, virtual packages and PyPI options from bases and defaults.

    A base's dependencies are not copied: the base's *lock* is pinned when resolving, so only
    this tag's own additions are part of its request (plus the base's full_id).
    """
    chain: list[tuple[Alias, ConcreteTag]] = []
    seen: set[Alias] = set()
    current: Alias | None = alias
    while current is not None:
        if current in seen:
            cycle = " -> ".join(str(a) for a, _ in chain) + f" -> {current}"
            raise CatalogError(
                f"extends forms a cycle: {cycle}", tag=alias.tag, rule="extends-cycle"
            )
        seen.add(current)
        spec = lookup(current)
        if isinstance(spec, PointerTag):
            raise CatalogError(
                f"{current} is a pointer; extends must name a concrete tag",
                tag=alias.tag,
                rule="extends-pointer",
                fix=f"extend the tag it points to: {spec.points_to}",
            )
        chain.append((current, spec))
        current = base_alias(current, spec.extends) if spec.extends else None

    def inherited(field: str) -> Any:
        for _, spec in chain:
            value = getattr(spec, field)
            if value:
                return value
        return None

    own = chain[0][1]
    virtual: dict[str, dict[str, str]] = {}
    for _, spec in reversed(chain):
        for platform, packages in spec.virtual_packages.items():
            virtual.setdefault(platform, {}).update(packages)
    return EffectiveSpec(
        alias=str(alias),
        channels=list(inherited("channels") or config.effective_default_channels),
        platforms=list(inherited("platforms") or config.platforms),
        dependencies=list(own.dependencies),
        pypi=list(own.pypi),
        target=dict(own.target),
        virtual_packages=virtual,
        pypi_options=inherited("pypi_options"),
        base=str(chain[1][0]) if len(chain) > 1 else None,
    )


def pypi_exclude_newer(options: PypiOptions | None, config: CatalogConfig) -> bool:
    """Whether a tag's ``exclude_newer`` is applied to its PyPI part: the tag's
    ``pypi_options.exclude_newer`` when set, else the catalog's ``pypi_exclude_newer``."""
    if options is not None and options.exclude_newer is not None:
        return options.exclude_newer
    return config.pypi_exclude_newer


class Request(StrictModel):
    """What one platform asks for, fully expanded; its hash is the ``req_id``."""

    version: str = REQUEST_VERSION
    platform: str
    channels: list[str]
    dependencies: list[str]
    pypi: list[str]
    virtual_packages: dict[Key, str]
    base_full_id: str | None = None
    exclude_newer: str | None = None

    def canonical_json(self) -> bytes:
        return json.dumps(
            self.model_dump(mode="json"),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")

    @property
    def req_id(self) -> str:
        return hashlib.sha1(self.canonical_json()).hexdigest()


def build_request(
    spec: EffectiveSpec,
    platform: str,
    config: CatalogConfig,
    *,
    base_full_id: str | None = None,
    exclude_newer: str | None = None,
) -> Request:
    """Expand defaults for one platform. Channel order is kept; requirement order is not."""
    if platform not in spec.platforms:
        raise NotFoundError(
            f"{spec.alias} is not declared for {platform}",
            rule="unknown-platform",
            fix=f"use one of: {', '.join(spec.platforms)}",
        )
    unknown = [c for c in spec.channels if c not in config.channels]
    if unknown:
        raise CatalogError(
            f"{spec.alias} uses channel(s) {', '.join(unknown)} not declared in catalog.yaml",
            rule="unknown-channel",
            fix=f"declare them under 'channels:' or use one of: {', '.join(config.channels)}",
        )
    target = spec.target.get(platform, Target())
    deps = [
        normalize_conda_spec(d, channels=config.channels)
        for d in [*spec.dependencies, *target.dependencies]
    ]
    pypi = [normalize_pypi_requirement(r) for r in [*spec.pypi, *target.pypi]]
    virtual = config.virtual_packages_for(platform)
    virtual.update(spec.virtual_packages.get(platform, {}))
    return Request(
        platform=platform,
        channels=list(spec.channels),
        dependencies=sorted(set(deps)),
        pypi=sorted(set(pypi)),
        virtual_packages=dict(sorted(virtual.items())),
        base_full_id=base_full_id,
        exclude_newer=exclude_newer,
    )


_SPEC_NAME = re.compile(r"\s*(?:[^\s:]+::)?([A-Za-z0-9_.\-]+)")


def env_type(dependencies: list[str], pypi: list[str]) -> str:
    """Metaflow's environment type words. ``python`` alone does not make an env conda-based,
    but ``python-dateutil`` does (compare package names, not prefixes)."""
    names = [m.group(1).lower() if (m := _SPEC_NAME.match(d)) else d for d in dependencies]
    if pypi and all(n == "python" for n in names):
        return "pypi-only"
    return "mixed" if pypi else "conda-only"


__all__ = [
    "ConcreteTag",
    "EffectiveSpec",
    "EnvFile",
    "EnvName",
    "PointerTag",
    "Request",
    "build_request",
    "effective_spec",
    "normalize_conda_spec",
    "normalize_pypi_requirement",
    "parse_env_file",
    "pypi_exclude_newer",
]
