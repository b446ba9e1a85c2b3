"""``locks/<env>/<tag>.meta.yaml``: what was resolved, by whom and when. Written only by CI
(or ``envctl resolve`` in a work tree, for CI to check and commit).

Versioned. Per platform it records ``req_id``, ``full_id`` and the fully expanded
request, so a later change of catalog defaults never changes a frozen id. Times
and identity are passed in by the caller (never ``datetime.now()`` or the user
name inside a model), so the same inputs give the same bytes.
"""

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
    base: str | None = Field(default=None, description="the alias this tag extends, if any")
    exclude_newer: str | None = None
    resolved_at: str
    resolved_by: str
    envctl_version: str
    tools: dict[str, str] = Field(
        default_factory=dict, description="solver versions, e.g. py-rattler and uv"
    )
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

    @field_validator("lock_sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("must be 64 lower-case hex characters")
        return value

    def env_ids(self) -> dict[str, str]:
        """``{platform: "req_id:full_id"}``."""
        return {p: f"{m.req_id}:{m.full_id}" for p, m in self.platforms.items()}


def parse_meta(data: object, *, file: str) -> Meta:
    return validate(Meta, data, file=file)


def dump_meta(meta: Meta) -> bytes:
    """Deterministic YAML bytes: fields in model order, platforms sorted."""
    from envctl import yamlio

    data = meta.model_dump(mode="json")
    data["platforms"] = {p: data["platforms"][p] for p in sorted(data["platforms"])}
    tag = meta.alias.rsplit(":", 1)[-1]
    header = f"# Resolved by envctl; do not edit. The lockfile is {tag}.conda-lock.yml\n"
    return (header + yamlio.dump(data)).encode("utf-8")
