"""``locks/<env>/<tag>.meta.yaml``: what CI resolved, versioned. Written only by CI."""

from __future__ import annotations

from pydantic import Field, field_validator

from envctl.models import StrictModel, validate
from envctl.names import is_40hex
from envctl.spec import Request

META_VERSION = "1"


class PlatformMeta(StrictModel):
    req_id: str
    full_id: str
    request: Request

    @field_validator("req_id", "full_id")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not is_40hex(value):
            raise ValueError("must be 40 lower-case hex characters")
        return value


class Meta(StrictModel):
    version: str = META_VERSION
    alias: str
    exclude_newer: str | None = None
    resolved_at: str
    resolved_by: str
    envctl_version: str
    lock_sha256: str
    platforms: dict[str, PlatformMeta] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != META_VERSION:
            raise ValueError(
                f"meta version {value!r} is newer than this envctl understands; upgrade envctl"
            )
        return value


def parse_meta(data: object, *, file: str) -> Meta:
    return validate(Meta, data, file=file)
