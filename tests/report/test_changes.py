"""Tag-by-tag changes between two catalogs, on hand-written files (no solve, no git)."""

from __future__ import annotations

from pathlib import Path

from envctl.catalog import Catalog, WorkTreeSource
from envctl.report.changes import catalog_diff, changed_env_names

CONFIG = "channels: {main: 'https://conda.example.org/main'}\nmutable_tags: [stable, nightly]\n"


def catalog(root: Path, envs: dict[str, str]) -> Catalog:
    root.mkdir()
    (root / "catalog.yaml").write_text(CONFIG)
    for name, text in envs.items():
        path = root / "envs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Catalog(WorkTreeSource(root))


OLD = """\
tags:
  v1: {dependencies: [python=3.11, numpy]}
  v2: {dependencies: [python=3.12, numpy]}
  old: {dependencies: [python]}
  stable: {points_to: v1}
  nightly: {dependencies: [python, numpy]}
  candidate: {dependencies: [python]}
"""

NEW = """\
tags:
  v1: {dependencies: [python=3.11, numpy], retired: "CVE in numpy; use v2"}
  v2: {dependencies: [python=3.12, numpy, "pandas>=2"]}
  stable: {points_to: v2}
  nightly: {dependencies: [python, numpy, scipy]}
  candidate: {points_to: v2}
  v3: {extends: v2, dependencies: [scipy], pypi: [requests==2.32.3]}
"""


def test_every_kind_of_change(tmp_path: Path) -> None:
    old = catalog(tmp_path / "old", {"team/app": OLD, "team/same": "tags: {v1: {}}\n"})
    new = catalog(tmp_path / "new", {"team/app": NEW, "team/same": "tags: {v1: {}}\n",
                                     "team/new": "tags:\n  v1: {dependencies: [python]}\n"})
    assert [str(n) for n in changed_env_names(old, new)] == ["team/app", "team/new"]
    diff = catalog_diff(old, new, old_label="old", new_label="new")
    assert diff.envs_added == ["team/new"] and diff.errors == []
    got = {str(c.alias): c for c in diff.changes}
    assert {a: (c.change, c.kind) for a, c in got.items()} == {
        "team/app:v1": ("retired", "immutable"),
        "team/app:v2": ("respecified", "immutable"),  # pending here: may still be fixed
        "team/app:stable": ("moved", "pointer"),
        "team/app:nightly": ("respecified", "rolling"),
        "team/app:candidate": ("respecified", "pointer"),
        "team/app:v3": ("added", "immutable"),
        "team/app:old": ("removed", "immutable"),
        "team/new:v1": ("added", "immutable"),
    }
    assert got["team/app:v1"].note == "CVE in numpy; use v2"
    assert got["team/app:v2"].requested is not None
    assert got["team/app:v2"].requested.added == ["conda::pandas >=2"]
    assert got["team/app:v2"].note == "pending: packages are known once CI locks it"
    assert got["team/app:nightly"].requested.to_dict() == {  # type: ignore[union-attr]
        "added": ["conda::scipy"], "removed": []}
    stable = got["team/app:stable"]
    assert (stable.old_target, stable.new_target) == ("v1", "v2")
    assert stable.note == "v2 is pending: packages are known once CI locks it"
    assert got["team/app:candidate"].note == "now points to v2"
    v3 = got["team/app:v3"]
    # Extends v2: compared with it, and only what v3 adds is "requested".
    assert v3.compared_with == "team/app:v2"
    assert v3.requested.to_dict() == {  # type: ignore[union-attr]
        "added": ["conda::scipy", "pypi::requests==2.32.3"], "removed": []}
    assert got["team/app:v1"].state == "retired"


def test_broken_env_file_is_reported_not_fatal(tmp_path: Path) -> None:
    old = catalog(tmp_path / "old", {"a/b": "tags: {v1: {}}\n", "a/c": "tags: {v1: {}}\n"})
    new = catalog(tmp_path / "new", {"a/b": "tags: {v1: {no_such_field: 1}}\n",
                                     "a/c": "tags: {v1: {}, v2: {}}\n"})
    diff = catalog_diff(old, new, old_label="old", new_label="new")
    assert [str(c.alias) for c in diff.changes] == ["a/c:v2"]
    assert len(diff.errors) == 1 and diff.errors[0].startswith("envs/a/b.yaml in ")
