"""The catalog's ``catalog.yaml``: channels, platforms, tag mutability, store, branch, signers.

Policy always reads this from the revision *before* a push, so a push can
never loosen the rules it is judged by.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from envctl.models import StrictModel, YamlBool, validate

CONFIG_FILE = "catalog.yaml"
CONFIG_VERSION = "1"

#: Metaflow's mutable tags; a catalog may add its own patterns (``dev-*``).
DEFAULT_MUTABLE_TAGS = ("latest", "candidate", "stable")

#: Subdirs envctl can solve for. Kept here (not asked of rattler) so the hook path stays light.
KNOWN_PLATFORMS = frozenset(
    {
        "linux-64",
        "linux-aarch64",
        "linux-ppc64le",
        "osx-64",
        "osx-arm64",
        "win-64",
        "win-arm64",
    }
)

#: What a solve assumes about the target machine when the catalog says nothing.
#: Conservative floors (old glibc, old macOS) so locks run on the most machines.
DEFAULT_VIRTUAL_PACKAGES: dict[str, dict[str, str]] = {
    "linux-64": {"__glibc": "2.17", "__linux": "5.10", "__unix": "0", "__archspec": "1=x86_64"},
    "linux-aarch64": {
        "__glibc": "2.17",
        "__linux": "5.10",
        "__unix": "0",
        "__archspec": "1=aarch64",
    },
    "linux-ppc64le": {"__glibc": "2.17", "__linux": "5.10", "__unix": "0"},
    "osx-64": {"__osx": "10.13", "__unix": "0", "__archspec": "1=x86_64"},
    "osx-arm64": {"__osx": "11.0", "__unix": "0", "__archspec": "1=arm64"},
    "win-64": {"__win": "0", "__archspec": "1=x86_64"},
    "win-arm64": {"__win": "0", "__archspec": "1=arm64"},
}


def check_platform(value: str) -> str:
    if value not in KNOWN_PLATFORMS:
        known = ", ".join(sorted(KNOWN_PLATFORMS))
        raise ValueError(f"unknown platform {value!r}; use one of {known}")
    return value


Platform = Annotated[str, AfterValidator(check_platform)]
VirtualPackages = dict[str, str]


def check_virtual_packages(value: dict[str, VirtualPackages]) -> dict[str, VirtualPackages]:
    for platform, packages in value.items():
        check_platform(platform)
        for name in packages:
            if not name.startswith("__"):
                raise ValueError(f"virtual package {name!r} must start with '__' (e.g. __cuda)")
    return value


class Signer(StrictModel):
    """One key allowed to sign commits that write locks (git SSH signing)."""

    principal: str
    key: str = Field(description="An SSH public key line: 'ssh-ed25519 AAAA... comment'")

    @field_validator("key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        parts = value.split()
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
            raise ValueError("key must be an SSH public key line like 'ssh-ed25519 AAAA...'")
        return value


class Retention(StrictModel):
    """``retention:``: what ``envctl gc`` keeps besides every live tag's current lock.

    Immutable tags are kept until retired; a mutable tag's earlier positions are kept
    while among its ``keep_last`` most recent or superseded less than ``keep_days``
    ago; run records younger than ``keep_days`` keep their environments.
    """

    keep_last: int = Field(default=5, ge=0)
    keep_days: float = Field(default=90, ge=0)
    grace_hours: float = Field(
        default=24, ge=0, description="how long an unreferenced object waits before deletion"
    )


class CatalogConfig(StrictModel):
    version: str = CONFIG_VERSION
    name: str | None = None
    description: str = ""
    channels: dict[str, str] = Field(
        default_factory=dict, description="logical name -> URL; the order is the default priority"
    )
    default_channels: list[str] | None = None
    platforms: list[Platform] = Field(default_factory=lambda: ["linux-64"])
    virtual_packages: Annotated[
        dict[str, VirtualPackages], AfterValidator(check_virtual_packages)
    ] = Field(default_factory=dict)
    mutable_tags: list[str] = Field(default_factory=lambda: list(DEFAULT_MUTABLE_TAGS))
    branch: str = "main"
    store: str | None = None
    pypi_index: str | None = None
    pypi_exclude_newer: YamlBool = Field(
        default=True,
        description="apply a tag's exclude_newer to its PyPI part too; false for an index "
        "without PEP 700 upload times (a tag may say otherwise in pypi_options)",
    )
    allowed_signers: list[Signer] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    retention: Retention = Field(default_factory=Retention)
    retired_policy: Literal["warn", "refuse"] = Field(
        default="warn", description="what 'create' does with a retired tag"
    )

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value != CONFIG_VERSION:
            raise ValueError(
                f"catalog.yaml version {value!r} is not supported by this envctl "
                f"(supports {CONFIG_VERSION!r}); upgrade envctl"
            )
        return value

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not name or "::" in name or "/" in name or name != name.strip():
                raise ValueError(f"channel name {name!r} must be a simple word like 'conda-forge'")
            if not url:
                raise ValueError(f"channel {name!r} has no URL")
        return value

    @model_validator(mode="after")
    def _defaults_exist(self) -> CatalogConfig:
        for name in self.default_channels or []:
            if name not in self.channels:
                raise ValueError(f"default channel {name!r} is not declared under channels")
        return self

    def is_mutable(self, tag: str) -> bool:
        """Whether ``tag`` is a mutable tag by this config's patterns (fnmatch, case-sensitive)."""
        return any(fnmatchcase(tag, pattern) for pattern in self.mutable_tags)

    @property
    def effective_default_channels(self) -> list[str]:
        return list(self.default_channels or self.channels)

    def virtual_packages_for(self, platform: str) -> dict[str, str]:
        """Built-in defaults for ``platform`` overlaid with the catalog's own."""
        merged = dict(DEFAULT_VIRTUAL_PACKAGES.get(platform, {}))
        merged.update(self.virtual_packages.get(platform, {}))
        return merged

    def signer_keys(self) -> dict[str, str]:
        return {signer.principal: signer.key for signer in self.allowed_signers}


def parse_config(data: object, *, file: str = CONFIG_FILE) -> CatalogConfig:
    return validate(CatalogConfig, data, file=file, fix="see the catalog.yaml reference in README")
