"""list_environments and show_environment on a real catalog folder with hand-written locks."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl import yamlio
from envctl.catalog import Catalog, WorkTreeSource
from envctl.describe import (
    AliasRef,
    Package,
    find_by_id,
    list_environments,
    read_lock_packages,
    show_environment,
)
from envctl.errors import CatalogError, EnvctlError, LockfileError, NotFoundError
from envctl.names import parse_alias, parse_env_id

CONFIG = """\
channels:
  conda-forge: https://conda.anaconda.org/conda-forge
  bioconda: https://bc.example
platforms: [linux-64, osx-arm64]
mutable_tags: [latest, candidate, stable, nightly, "dev-*"]
pypi_index: https://pypi.example/simple
"""

BASE = """\
description: Data science base
owners: [ranking, ml]
tags:
  v1:
    channels: [conda-forge]
    dependencies: [python=3.11, numpy>=1.26]
    pypi: [itsdangerous==2.1.2]
  v2:
    extends: v1
    description: adds pandas
    dependencies: [pandas]
    target:
      linux-64:
        dependencies: [libgcc]
  stable: {points_to: v1}
  candidate: {points_to: v2}
  nightly:
    dependencies: [python=3.12, numpy]
"""

REQ = {"linux-64": "1" * 40, "osx-arm64": "3" * 40}
FULL = {"linux-64": "2" * 40, "osx-arm64": "4" * 40}


def meta_text(alias: str, *, deps: list[str], pypi: list[str] = (),  # type: ignore[assignment]
              platforms: tuple[str, ...] = ("linux-64", "osx-arm64"),
              ids: tuple[dict[str, str], dict[str, str]] = (REQ, FULL)) -> str:
    return yamlio.dump({
        "version": "1",
        "alias": alias,
        "exclude_newer": "2024-01-01T00:00:00Z",
        "resolved_at": "2024-01-02T03:04:05Z",
        "resolved_by": "ci-bot",
        "envctl_version": "0.1.0",
        "lock_sha256": "0" * 64,
        "platforms": {
            p: {
                "req_id": ids[0][p],
                "full_id": ids[1][p],
                "request": {
                    "version": "1", "platform": p, "channels": ["conda-forge"],
                    "dependencies": deps, "pypi": list(pypi), "virtual_packages": {},
                    "base_full_id": None, "exclude_newer": "2024-01-01T00:00:00Z",
                },
            }
            for p in platforms
        },
    })


def lock_text(packages: list[tuple[str, str, str, str]]) -> str:
    """(name, version, manager, platform) rows as a conda-lock v1 file."""
    return yamlio.dump({
        "version": "1",
        "metadata": {"platforms": sorted({p[3] for p in packages}), "sources": []},
        "package": [
            {
                "name": name, "version": version, "manager": manager, "platform": platform,
                "dependencies": {}, "url": f"https://files.example/{name}-{version}",
                "hash": {"md5": "d" * 32, "sha256": "e" * 64},
                "category": "main", "optional": "false",
                **({"build": "h0_0"} if manager == "conda" else {}),
            }
            for name, version, manager, platform in packages
        ],
    })


V1_LOCK = lock_text([
    ("python", "3.11.9", "conda", "linux-64"),
    ("numpy", "1.26.4", "conda", "linux-64"),
    ("itsdangerous", "2.1.2", "pip", "linux-64"),
    ("numpy", "1.26.4", "conda", "osx-arm64"),
    ("python", "3.11.9", "conda", "osx-arm64"),
    ("itsdangerous", "2.1.2", "pip", "osx-arm64"),
])


def make(root: Path, extra: dict[str, str] | None = None) -> Catalog:
    files = {
        "catalog.yaml": CONFIG,
        "envs/ranking/base.yaml": BASE,
        "locks/ranking/base/v1.meta.yaml": meta_text(
            "ranking/base:v1", deps=["numpy >=1.26", "python 3.11.*"],
            pypi=["itsdangerous==2.1.2"],
        ),
        "locks/ranking/base/v1.conda-lock.yml": V1_LOCK,
        **(extra or {}),
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return Catalog(WorkTreeSource(root))


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return make(tmp_path)


# -- list -------------------------------------------------------------------------------


def test_list_shape(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/search/query.yaml": "tags:\n  v1:\n    dependencies: [numpy]\n"
        "    retired: superseded by v2\n  v2:\n    dependencies: [numpy]\n",
    })
    data = [e.to_dict() for e in list_environments(catalog)]
    assert data == [
        {
            "name": "ranking/base",
            "description": "Data science base",
            "owners": ["ranking", "ml"],
            "tags": [
                {"tag": "v1", "mutable": False, "state": "frozen", "points_to": None},
                {"tag": "v2", "mutable": False, "state": "pending", "points_to": None},
                {"tag": "stable", "mutable": True, "state": "frozen", "points_to": "v1"},
                {"tag": "candidate", "mutable": True, "state": "pending", "points_to": "v2"},
                {"tag": "nightly", "mutable": True, "state": "rolling", "points_to": None},
            ],
        },
        {
            "name": "search/query",
            "description": "",
            "owners": [],
            "tags": [
                {"tag": "v1", "mutable": False, "state": "retired", "points_to": None},
                {"tag": "v2", "mutable": False, "state": "pending", "points_to": None},
            ],
        },
    ]


def test_list_pattern_and_broken_files(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/search/query.yaml": "tags:\n  v1:\n    colour: red\n",
        "envs/search/ok.yaml": "tags:\n  stable: {points_to: v9}\n",
    })
    assert [e.name for e in list_environments(catalog, "ranking/*")] == ["ranking/base"]
    assert list_environments(catalog, "nothing/*") == []
    by_name = {e.name: e.to_dict() for e in list_environments(catalog, "search/*")}
    assert by_name["search/ok"]["tags"] == [
        {"tag": "stable", "mutable": True, "state": "invalid", "points_to": "v9"},
    ]
    broken = by_name["search/query"]
    assert broken["tags"] == []
    assert broken["error"] == (
        "envs/search/query.yaml:3: tags.v1.colour: unknown key [schema] — see 'envctl new "
        "--help' for the file format; run 'envctl lint'"
    )


def test_list_does_not_parse_locks(tmp_path: Path) -> None:
    catalog = make(tmp_path, {"locks/ranking/base/v1.conda-lock.yml": "not: [valid"})
    states = {t.tag: t.state for t in list_environments(catalog)[0].tags}
    assert states["v1"] == "frozen"


# -- show: frozen, pointers, aliases ----------------------------------------------------


def test_show_pointer_to_frozen_tag(catalog: Catalog) -> None:
    view = show_environment(catalog, "ranking/base:stable")
    data = view.to_dict()
    assert data["asked"] == "ranking/base:stable"
    assert data["alias"] == "ranking/base:v1"
    assert (data["name"], data["tag"], data["resolved_via"]) == ("ranking/base", "v1", "pointer")
    assert (data["mutable"], data["state"], data["type"]) == (False, "frozen", "mixed")
    assert data["aliases"] == [
        {"alias": "ranking/base:v1", "mutable": False, "implicit": False},
        {"alias": "ranking/base:stable", "mutable": True, "implicit": False},
        # 'latest' is not declared, so the bare name means the newest frozen tag: v1.
        {"alias": "ranking/base:latest", "mutable": True, "implicit": True},
    ]
    assert data["platforms"] == ["linux-64", "osx-arm64"]
    assert data["channels"] == ["conda-forge"]
    assert data["sources"] == ["conda::conda-forge", "pypi::https://pypi.example/simple"]
    assert data["base"] is None
    assert data["requested"] == {
        "conda": ["numpy >=1.26", "python 3.11.*"], "pypi": ["itsdangerous==2.1.2"],
    }
    assert (data["exclude_newer"], data["resolved_at"], data["resolved_by"]) == (
        "2024-01-01T00:00:00Z", "2024-01-02T03:04:05Z", "ci-bot",
    )
    assert data["provisional"] is False
    linux = data["environments"][0]
    assert linux == {
        "platform": "linux-64",
        "id": f"{REQ['linux-64']}:{FULL['linux-64']}",
        "req_id": REQ["linux-64"],
        "full_id": FULL["linux-64"],
        "provisional": False,
        "base_full_id": None,
        "base_pending": False,
        "requested": {"conda": ["numpy >=1.26", "python 3.11.*"], "pypi": ["itsdangerous==2.1.2"]},
        "installed": {
            "conda": [
                {"name": "numpy", "version": "1.26.4", "build": "h0_0",
                 "url": "https://files.example/numpy-1.26.4", "sha256": "e" * 64},
                {"name": "python", "version": "3.11.9", "build": "h0_0",
                 "url": "https://files.example/python-3.11.9", "sha256": "e" * 64},
            ],
            "pypi": [
                {"name": "itsdangerous", "version": "2.1.2", "build": None,
                 "url": "https://files.example/itsdangerous-2.1.2", "sha256": "e" * 64},
            ],
        },
    }
    assert data["environments"][1]["id"] == f"{REQ['osx-arm64']}:{FULL['osx-arm64']}"
    assert list(data) == [
        "asked", "alias", "name", "tag", "resolved_via", "mutable", "state", "type",
        "description", "tag_description", "owners", "aliases", "platforms", "channels",
        "sources", "base", "requested", "exclude_newer", "pypi_exclude_newer", "resolved_at",
        "resolved_by", "provisional", "environments",
    ]


def test_show_platform_filter(catalog: Catalog) -> None:
    view = show_environment(catalog, "ranking/base:v1", platform="osx-arm64")
    assert [p.platform for p in view.environments] == ["osx-arm64"]
    assert view.platforms == ["linux-64", "osx-arm64"]
    with pytest.raises(NotFoundError) as info:
        show_environment(catalog, "ranking/base:v1", platform="win-64")
    assert info.value.rule == "unknown-platform"
    assert info.value.fix == "use one of: linux-64, osx-arm64"


def test_frozen_tag_keeps_what_its_meta_recorded(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "catalog.yaml": CONFIG.replace("[linux-64, osx-arm64]", "[linux-64, osx-arm64, win-64]"),
    })
    view = show_environment(catalog, "ranking/base:v1")
    assert view.platforms == ["linux-64", "osx-arm64"]  # not the new default win-64
    pending = show_environment(catalog, "ranking/base:v2")
    assert pending.platforms == ["linux-64", "osx-arm64", "win-64"]
    assert pending.environments[2].base_pending  # v1 has no win-64 lock


# -- show: pending tags and provisional ids ---------------------------------------------

# v2 extends the locked v1, so its req_id is known before CI locks it (exclude_newer unset).
V2_LINUX_REQ_ID = "1f1019d7f79eb4fab5f568fab125d6703c67f9ba"


def test_show_pending_tag_has_provisional_req_id(catalog: Catalog) -> None:
    view = show_environment(catalog, "ranking/base:candidate")
    assert (view.alias, view.state, view.base) == ("ranking/base:v2", "pending", "ranking/base:v1")
    assert view.tag_description == "adds pandas"
    assert view.provisional
    assert view.aliases == [
        AliasRef("ranking/base:v2", False), AliasRef("ranking/base:candidate", True),
    ]
    linux, mac = view.environments
    assert linux.base_full_id == FULL["linux-64"]
    assert mac.base_full_id == FULL["osx-arm64"]
    assert (linux.full_id, linux.id, linux.provisional, linux.base_pending) == (
        None, None, True, False,
    )
    assert linux.req_id == V2_LINUX_REQ_ID
    assert linux.conda == ["libgcc", "pandas"]
    assert mac.conda == ["pandas"]
    assert view.requested == {"conda": ["pandas"], "pypi": []}
    assert view.type == "mixed"  # pypi from the base, conda packages of its own
    assert view.to_dict()["environments"][0]["installed"] is None


def test_show_base_pending(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/ranking/child.yaml": "tags:\n  v1:\n    extends: ranking/base:v2\n"
        "    pypi: [rich]\n",
    })
    view = show_environment(catalog, "ranking/child:v1")
    assert view.base == "ranking/base:v2"
    assert all(p.base_pending and p.req_id is None for p in view.environments)
    assert view.environments[0].to_dict()["requested"] == {"conda": [], "pypi": ["rich"]}


def test_show_rolling_and_types(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/tools/cli.yaml": "tags:\n  v1:\n    dependencies: [python=3.12]\n"
        "    pypi: [rich]\n",
    })
    nightly = show_environment(catalog, "ranking/base:nightly")
    assert (nightly.state, nightly.mutable, nightly.type) == ("rolling", True, "conda-only")
    assert nightly.aliases == [AliasRef("ranking/base:nightly", True)]
    assert nightly.channels == ["conda-forge", "bioconda"]  # the catalog's defaults
    assert nightly.sources == ["conda::conda-forge", "conda::bioconda"]
    assert show_environment(catalog, "tools/cli:v1").type == "pypi-only"


# -- show: the latest rule --------------------------------------------------------------


def test_name_without_tag_is_newest_frozen_tag(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/a/env.yaml": "tags:\n"
        "  v1:\n    dependencies: [numpy]\n"
        "  v2:\n    dependencies: [numpy]\n"
        "  v3:\n    dependencies: [numpy]\n",  # pending: not picked
        "locks/a/env/v1.meta.yaml": meta_text("a/env:v1", deps=["numpy"]),
        "locks/a/env/v1.conda-lock.yml": V1_LOCK,
        "locks/a/env/v2.meta.yaml": meta_text(
            "a/env:v2", deps=["numpy"],
            ids=({p: "5" * 40 for p in REQ}, {p: "6" * 40 for p in REQ}),
        ),
        "locks/a/env/v2.conda-lock.yml": V1_LOCK,
    })
    view = show_environment(catalog, "a/env")
    assert (view.asked, view.alias, view.resolved_via) == ("a/env", "a/env:v2", "newest-frozen")
    assert view.aliases == [AliasRef("a/env:v2", False), AliasRef("a/env:latest", True, True)]
    assert view.environments[0].id == f"{'5' * 40}:{'6' * 40}"
    # An explicit ':latest' follows the same rule when 'latest' is not declared.
    assert show_environment(catalog, "a/env:latest").alias == "a/env:v2"
    assert show_environment(catalog, "a/env:v1").aliases == [AliasRef("a/env:v1", False)]


def test_name_without_tag_uses_declared_latest(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/ranking/base.yaml": BASE + "  latest: {points_to: v1}\n"
        "  v3:\n    dependencies: [numpy]\n",
        "locks/ranking/base/v3.meta.yaml": meta_text("ranking/base:v3", deps=["numpy"]),
        "locks/ranking/base/v3.conda-lock.yml": V1_LOCK,
    })
    view = show_environment(catalog, "ranking/base")
    assert (view.alias, view.resolved_via) == ("ranking/base:v1", "pointer")
    assert [a.alias for a in view.aliases] == [
        "ranking/base:v1", "ranking/base:stable", "ranking/base:latest",
    ]
    assert all(a.mutable for a in view.aliases[1:])


def test_name_without_tag_and_nothing_frozen(tmp_path: Path) -> None:
    catalog = make(tmp_path, {"envs/a/env.yaml": "tags:\n  v1:\n    dependencies: [numpy]\n"})
    with pytest.raises(NotFoundError) as info:
        show_environment(catalog, "a/env")
    assert "declares no 'latest' tag and has no locked immutable tag yet" in info.value.message


# -- show: by id, and errors ------------------------------------------------------------


def test_show_by_id(catalog: Catalog) -> None:
    env_id = f"{REQ['osx-arm64']}:{FULL['osx-arm64']}"
    view = show_environment(catalog, env_id)
    assert (view.asked, view.alias, view.state) == (env_id, "ranking/base:v1", "frozen")
    assert [p.platform for p in view.environments] == ["osx-arm64"]
    assert find_by_id(catalog, parse_env_id(env_id)) == (
        parse_alias("ranking/base:v1"), "osx-arm64",
    )
    with pytest.raises(NotFoundError) as info:
        show_environment(catalog, env_id, platform="linux-64")
    assert info.value.rule == "unknown-platform"


def test_show_unknown_id(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError) as info:
        show_environment(catalog, f"{'9' * 40}:{'8' * 40}")
    assert info.value.rule == "unknown-id"
    assert info.value.message == f"no environment in this catalog has the id {'9' * 40}:{'8' * 40}"


def test_show_errors(tmp_path: Path) -> None:
    catalog = make(tmp_path, {
        "envs/bad/chain.yaml": "tags:\n  v1:\n    dependencies: [x]\n"
        "  stable: {points_to: candidate}\n  candidate: {points_to: v1}\n",
        "envs/bad/dep.yaml": "tags:\n  v1:\n    dependencies: ['numpy >=>=1']\n",
    })
    with pytest.raises(CatalogError) as info:
        show_environment(catalog, "bad/chain:stable")
    assert info.value.rule == "pointer-chain"
    with pytest.raises(NotFoundError) as info:
        show_environment(catalog, "ranking/base:v7")
    assert info.value.message == "ranking/base has no tag 'v7'"
    with pytest.raises(NotFoundError) as info:
        show_environment(catalog, "ranking/bsae:v1")
    assert info.value.fix == "did you mean ranking/base?"
    with pytest.raises(EnvctlError) as info:
        show_environment(catalog, "bad/dep:v1")
    assert (info.value.file, info.value.tag, info.value.rule) == (
        "envs/bad/dep.yaml", "v1", "invalid-requirement",
    )
    with pytest.raises(EnvctlError) as info:
        show_environment(catalog, "Ranking/Base")
    assert info.value.rule == "invalid-name"


# -- the lock reader --------------------------------------------------------------------


def test_read_lock_packages() -> None:
    packages = read_lock_packages(V1_LOCK, file="x.conda-lock.yml")
    assert sorted(packages) == ["linux-64", "osx-arm64"]
    assert [str(p) for p in packages["linux-64"]["conda"]] == [
        "numpy==1.26.4-h0_0", "python==3.11.9-h0_0",
    ]
    assert packages["linux-64"]["pypi"] == [
        Package("itsdangerous", "2.1.2", None, "https://files.example/itsdangerous-2.1.2",
                "e" * 64),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\npackage: []\n", "conda-lock lockfile version '2' is not supported"),
        ("version: 1\nmetadata: {}\n", "package must be a list"),
    ],
)
def test_read_lock_packages_refusals(text: str, message: str) -> None:
    with pytest.raises(LockfileError) as info:
        read_lock_packages(text, file="x.conda-lock.yml")
    assert info.value.message.startswith(message)
    assert info.value.file == "x.conda-lock.yml"


def test_show_with_a_broken_lock_is_one_clear_error(tmp_path: Path) -> None:
    catalog = make(tmp_path, {"locks/ranking/base/v1.conda-lock.yml": "version: 1\n"})
    with pytest.raises(LockfileError) as info:
        show_environment(catalog, "ranking/base:v1")
    assert info.value.file == "locks/ranking/base/v1.conda-lock.yml"
