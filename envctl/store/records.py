"""The JSON records the store holds beside packages and locks.

- :class:`EnvRecord` at ``envs/<platform>/<req_id>/<full_id>.json``: one environment
  (one tag on one platform): its lock's sha256 and every package file it installs,
  so a consumer can rebuild it from the store alone.
- :class:`AliasRecord` at ``aliases/<name>/<tag>.json``: what ``name:tag`` points
  at, published by CI after the commit back, so a remote task finds an environment
  without a git clone.

Both are versioned and written deterministically (sorted keys, one trailing
newline): the same record gives the same bytes, which is what makes a republish a
no-op in a write-once store. Times and identity are passed in, never taken from
the clock or the user inside a model.
"""

from __future__ import annotations

import itertools
import json
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from envctl.config import Platform
from envctl.errors import EnvctlError, StoreError
from envctl.models import Hex40, Sha256, StrictModel, dump_json
from envctl.names import is_40hex, parse_env_name, parse_tag
from envctl.resolve.ids import full_id as compute_full_id
from envctl.store.base import is_sha256, package_key

RECORD_VERSION = "1"

R = TypeVar("R", bound=BaseModel)


def _known_version(value: str) -> str:
    if value != RECORD_VERSION:
        raise ValueError(
            f"record version {value!r} is not understood by this envctl "
            f"(reads {RECORD_VERSION!r}); upgrade envctl"
        )
    return value


class PackageRecord(StrictModel):
    """One file an environment installs (conda or PyPI), stored at ``pkgs/<sha256>/<filename>``."""

    filename: str
    sha256: Sha256
    size: int = Field(ge=0)
    url: str = Field(description="where CI fetched it (the channel or index URL), for provenance")

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        try:
            package_key("0" * 64, value)
        except EnvctlError as exc:
            raise ValueError(exc.message) from None
        return value


class EnvRecord(StrictModel):
    version: str = RECORD_VERSION
    platform: Platform
    req_id: Hex40
    full_id: Hex40
    alias: str = Field(description="the name:tag that first produced this environment")
    lock_sha256: Sha256
    packages: list[PackageRecord]
    resolved_at: str
    resolved_by: str
    envctl_version: str

    _check_version = field_validator("version")(_known_version)

    @field_validator("packages")
    @classmethod
    def _sorted_unique(cls, value: list[PackageRecord]) -> list[PackageRecord]:
        # Sorted so that equal records give equal bytes whatever order the lock listed.
        ordered = sorted(value, key=lambda p: (p.filename, p.sha256))
        for before, after in itertools.pairwise(ordered):
            if before.filename == after.filename:
                raise ValueError(f"package file {after.filename!r} is listed twice")
        return ordered

    @model_validator(mode="after")
    def _full_id_matches(self) -> EnvRecord:
        # The id is a hash of the package list: a record whose list does not give it
        # back is corrupt (or was built from the wrong lock).
        actual = compute_full_id(self.platform, self.packages)
        if actual != self.full_id:
            raise ValueError(
                f"full_id {self.full_id} does not match its packages (they give {actual})"
            )
        return self

    def same_environment(self, other: EnvRecord) -> bool:
        """Same id and same package files (alias, lock bytes and times may differ)."""
        return (self.platform, self.req_id, self.full_id, self.packages) == (
            other.platform,
            other.req_id,
            other.full_id,
            other.packages,
        )


class AliasTarget(StrictModel):
    req_id: Hex40
    full_id: Hex40

    def __str__(self) -> str:
        return f"{self.req_id}:{self.full_id}"


class AliasRecord(StrictModel):
    version: str = RECORD_VERSION
    name: str
    tag: str
    mutable: bool
    target: str | None = Field(
        default=None, description="for a pointer (points_to), the immutable tag it names"
    )
    platforms: dict[Platform, AliasTarget]
    lock_sha256: Sha256
    commit: str = Field(description="the catalog commit that locked or moved this tag")
    published_at: str

    _check_version = field_validator("version")(_known_version)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return parse_env_name(value).path
        except EnvctlError as exc:
            raise ValueError(exc.message) from None

    @field_validator("tag", "target")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return parse_tag(value)
        except EnvctlError as exc:
            raise ValueError(exc.message) from None

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str) -> str:
        # git object ids: sha1 (40) or, in sha256 repositories, 64 lower-case hex.
        if not (is_40hex(value) or is_sha256(value)):
            raise ValueError("must be a full git commit id (40 or 64 lower-case hex)")
        return value

    @field_validator("platforms")
    @classmethod
    def _some_platform(cls, value: dict[str, AliasTarget]) -> dict[str, AliasTarget]:
        if not value:
            raise ValueError("an alias names at least one platform")
        return dict(sorted(value.items()))

    @model_validator(mode="after")
    def _pointer_is_mutable(self) -> AliasRecord:
        if self.target is not None and not self.mutable:
            raise ValueError("only a mutable tag can point at another tag")
        return self

    @property
    def alias(self) -> str:
        return f"{self.name}:{self.tag}"

    def same_target(self, other: AliasRecord) -> bool:
        """Whether both say the same thing, ignoring when and from which commit it was said."""
        ignore = {"published_at", "commit"}
        return self.model_dump(exclude=ignore) == other.model_dump(exclude=ignore)


#: Deterministic JSON bytes: sorted keys, two-space indent, one trailing newline.
dump_record = dump_json


def _load(model: type[R], data: bytes, *, where: str) -> R:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(
            f"not a JSON record: {exc}",
            file=where,
            rule="invalid-record",
            fix="re-publish it with envctl ci run",
        ) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)[:3]
        )
        raise StoreError(
            f"invalid {model.__name__}: {problems}",
            file=where,
            rule="invalid-record",
            fix="upgrade envctl if the record is newer, else re-publish it with envctl ci run",
        ) from None


def load_env_record(data: bytes, *, where: str) -> EnvRecord:
    return _load(EnvRecord, data, where=where)


def load_alias_record(data: bytes, *, where: str) -> AliasRecord:
    return _load(AliasRecord, data, where=where)
