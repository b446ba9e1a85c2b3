"""Catalog files written by hand for tests: config, env files, and lock + meta pairs.

The locks are conda-lock v1 shaped and their meta carries the real ``req_id`` of the
spec (computed with ``envctl.spec.build_request``), so the policy's content checks pass
unless a test breaks something on purpose. Nothing is solved: packages are made up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from envctl import yamlio
from envctl.config import CONFIG_FILE, parse_config
from envctl.errors import NotFoundError
from envctl.names import Alias, parse_alias
from envctl.resolve.ids import full_id_of_entries
from envctl.spec import build_request, effective_spec, parse_env_file

CHANNEL_URL = "https://conda.example.org/main"
PYPI_URL = "https://pypi.example.org/simple"
EXCLUDE_NEWER = "2024-01-01T00:00:00Z"


def config_yaml(
    *,
    signers: Sequence[tuple[str, str]] = (),
    admins: Sequence[str] = (),
    mutable_tags: Sequence[str] | None = None,
    branch: str = "main",
    platforms: Sequence[str] = ("linux-64",),
    extra: Mapping[str, Any] | None = None,
) -> str:
    data: dict[str, Any] = {
        "version": "1",
        "channels": {"main": CHANNEL_URL},
        "platforms": list(platforms),
        "branch": branch,
        "pypi_index": PYPI_URL,
    }
    if mutable_tags is not None:
        data["mutable_tags"] = list(mutable_tags)
    if signers:
        data["allowed_signers"] = [{"principal": p, "key": k} for p, k in signers]
    if admins:
        data["admins"] = list(admins)
    data.update(extra or {})
    return yamlio.dump(data)


def env_yaml(tags: Mapping[str, Any], *, owners: Sequence[str] = (), description: str = "") -> str:
    data: dict[str, Any] = {"description": description}
    if owners:
        data["owners"] = list(owners)
    data["tags"] = {tag: dict(spec) for tag, spec in tags.items()}
    return yamlio.dump(data)


def package(
    name: str,
    platform: str,
    *,
    version: str = "1.0",
    url: str | None = None,
    manager: str = "conda",
    sha256: str | None = "auto",
    md5: str | None = "auto",
) -> dict[str, Any]:
    if url is None:
        url = f"{CHANNEL_URL}/{platform}/{name}-{version}-0.conda"
    hashes: dict[str, str] = {}
    if md5 == "auto":
        md5 = hashlib.md5(url.encode()).hexdigest()
    if sha256 == "auto":
        sha256 = hashlib.sha256(url.encode()).hexdigest()
    if md5 and manager == "conda":
        hashes["md5"] = md5
    if sha256:
        hashes["sha256"] = sha256
    return {
        "name": name,
        "version": version,
        "manager": manager,
        "platform": platform,
        "dependencies": {},
        "url": url,
        "hash": hashes,
        "category": "main",
        "optional": "false",
    }


def lock_files(
    files: Mapping[str, bytes | str],
    alias_text: str,
    *,
    packages: Sequence[Mapping[str, Any]] | None = None,
    exclude_newer: str = EXCLUDE_NEWER,
    req_ids: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{lock_path: text, meta_path: text}`` for ``alias_text`` as ``files`` declare it.

    ``req_ids`` overrides the computed req_id per platform (to forge a mismatch).
    """
    alias = parse_alias(alias_text)

    def text(path: str) -> str | None:
        data = files.get(path)
        return data.decode() if isinstance(data, bytes) else data

    config = parse_config(yamlio.load(text(CONFIG_FILE) or "version: '1'"))

    def lookup(a: Alias) -> Any:
        raw = text(str(a.name.env_file))
        if raw is None:
            raise NotFoundError(f"{a} missing")
        return parse_env_file(yamlio.load(raw), file=str(a.name.env_file)).tags[a.tag]

    spec = effective_spec(alias, lookup, config)
    metas: dict[str, Any] = {}
    pkgs = (
        list(packages) if packages is not None else [package("python", p) for p in spec.platforms]
    )
    full_ids: dict[str, str] = {}
    for platform in spec.platforms:
        base_full_id = None
        if spec.base is not None:
            base = parse_alias(spec.base)
            base_meta = yamlio.load(text(str(base.meta_path)) or "")
            base_full_id = base_meta["platforms"][platform]["full_id"]
        request = build_request(
            spec, platform, config, base_full_id=base_full_id, exclude_newer=exclude_newer
        )
        mine = [p for p in pkgs if p["platform"] == platform]
        full_ids[platform] = full_id_of_entries(
            platform,
            [
                f"{unquote(urlsplit(p['url']).path.rsplit('/', 1)[-1])}#{p['hash'].get('sha256')}"
                for p in mine
            ],
        )
        metas[platform] = {
            "req_id": (req_ids or {}).get(platform, request.req_id),
            "full_id": full_ids[platform],
            "request": request.model_dump(mode="json"),
        }
    custom = {"envctl.alias": str(alias)}
    custom.update({f"envctl.full_id.{p}": f for p, f in full_ids.items()})
    lock = yamlio.dump(
        {
            "version": "1",
            "metadata": {
                "content_hash": {p: m["req_id"] for p, m in metas.items()},
                "channels": [config.channels.get(c, c) for c in spec.channels],
                "platforms": list(spec.platforms),
                "sources": [f"../../{alias.name.env}.yaml"],
                "custom_metadata": custom,
            },
            "package": pkgs,
        }
    )
    meta = yamlio.dump(
        {
            "version": "1",
            "alias": str(alias),
            "base": spec.base,
            "exclude_newer": exclude_newer,
            "resolved_at": "2024-01-02T00:00:00Z",
            "resolved_by": "ci",
            "envctl_version": "0.1.0",
            "lock_sha256": hashlib.sha256(lock.encode()).hexdigest(),
            "platforms": metas,
        }
    )
    return {str(alias.lock_path): lock, str(alias.meta_path): meta}
