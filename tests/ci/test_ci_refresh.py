"""``envctl ci refresh``: a rolling tag gets a new lock only when its channel has something new."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.cli.main import app
from envctl.resolve.lockfile import read_lock
from envctl.store import LocalStore
from envctl.testing.channel import (
    LocalChannel,
    PackageFile,
    PackageSpec,
    dumps_json,
    record_for,
    render_package,
)
from envctl.testing.pushes import Keys, git

from .conftest import World, seed_server, server_catalog_yaml

pytestmark = pytest.mark.slow

LOCK = "locks/team/env/nightly.conda-lock.yml"


def add_tinynum(channel: Path, version: str, date: str) -> None:
    """Publish a newer tinynum into a channel and re-index its noarch subdir."""
    spec = PackageSpec(
        "tinynum", version, "py_0", "noarch", date, noarch="python", depends=("python >=3.8",),
        files={"site-packages/tinynum/__init__.py": PackageFile(
            f'__version__ = "{version}"\n'.encode())},
    )
    data = render_package(spec)
    (channel / "noarch" / spec.filename).write_bytes(data)
    repodata_path = channel / "noarch" / "repodata.json"
    repodata = json.loads(repodata_path.read_bytes())
    repodata["packages"][spec.filename] = record_for(spec.filename, data, spec.index_json())
    repodata_path.write_bytes(dumps_json(repodata))


def tinynum_in(world: World, rev: str) -> set[str]:
    text = git(world.server, "show", f"{rev}:{LOCK}").stdout
    return {p.version for p in read_lock(text).packages if p.name == "tinynum"}


def refresh(world: World, clone_path: Path) -> dict:
    result = CliRunner().invoke(app, [
        "--catalog", str(clone_path), "ci", "refresh", "--store", str(world.store.root),
        "--sign-key", str(world.keys.ci.private), "--json",
    ])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rolling_tag_relocks_only_when_a_newer_package_appears(
    keys: Keys, channel: LocalChannel, pypi_index: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVCTL_HOOK_DEADLINE", "60")
    monkeypatch.setenv("ENVCTL_HOME", str(tmp_path / "home"))
    mine = tmp_path / "channel"
    shutil.copytree(channel.path, mine)
    server = seed_server(tmp_path, keys,
                         server_catalog_yaml(mine.resolve().as_uri(), pypi_index, keys))
    world = World(tmp_path, server, keys, LocalStore(tmp_path / "store"))
    a = world.clone("a")
    world.add_env(a, "team/env", {"nightly": {"dependencies": ["python=3.11", "tinynum"]}},
                  author="Alice Doe <alice@example.org>")
    ci = world.clone("ci")

    first, _ = world.ci(ci)  # the push: the new rolling tag is locked like any other
    assert first.locked == ["team/env:nightly"]
    assert tinynum_in(world, "main") == {"2.0"}

    same = refresh(world, ci.path)  # nothing new in the channel: no commit
    assert same["commit"] is None and same["tags"][0]["status"] == "unchanged"
    assert world.head() == first.commit

    add_tinynum(mine, "2.1", "2025-06-01")
    newer = refresh(world, ci.path)
    assert newer["landed"] and newer["locked"] == ["team/env:nightly"]
    head = world.head()
    assert git(world.server, "log", "-1", "--format=%s", head).stdout.strip() == (
        "envctl ci: refresh team/env:nightly"
    )
    assert tinynum_in(world, head) == {"2.1"}
    # The tag's history: both locks, newest first.
    history = git(world.server, "log", "--format=%H", "main", "--", LOCK).stdout.split()
    assert history == [head, first.commit]
    assert tinynum_in(world, first.commit) == {"2.0"}
    # Consumers without a clone see the new ids: the mutable alias record moved.
    meta = yamlio.load(git(world.server, "show", f"{head}:locks/team/env/nightly.meta.yaml").stdout)
    record = world.store.get_alias("team/env", "nightly")
    assert record.mutable and record.commit == head
    assert {p: t.full_id for p, t in record.platforms.items()} == {
        p: m["full_id"] for p, m in meta["platforms"].items()
    }
    assert refresh(world, ci.path)["commit"] is None  # and again: nothing new
