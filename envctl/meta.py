"""``locks/<env>/<tag>.meta.yaml``: what was resolved, by whom and when. Written only by CI
(or ``envctl resolve`` in a work tree, for CI to check and commit).

Versioned. Per platform it records ``req_id``, ``full_id`` and the fully expanded
request, so a later change of catalog defaults never changes a frozen id. Times
and identity are passed in by the caller (never ``datetime.now()`` or the user
name inside a model), so the same inputs give the same bytes.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from envctl.models import Hex40, Sha256, StrictModel, validate
from envctl.names import is_valid_tag
from envctl.spec import Request

META_VERSION = "1"


class PlatformMeta(StrictModel):
    req_id: Hex40
    full_id: Hex40
    request: Request


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
    lock_sha256: Sha256
    platforms: dict[str, PlatformMeta] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != META_VERSION:
            raise ValueError(
                f"meta version {value!r} is newer than this envctl understands; upgrade envctl"
            )
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
    # The comment is outside YAML's quoting: only a valid tag may appear in it, or a tag
    # with a newline could end the comment and inject keys.
    lock_hint = f" The lockfile is {tag}.conda-lock.yml" if is_valid_tag(tag) else ""
    header = f"# Resolved by envctl; do not edit.{lock_hint}\n"
    return (header + yamlio.dump(data)).encode("utf-8")
