"""lint_catalog: every finding with its file, line and rule, on real catalog folders."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from envctl import yamlio
from envctl.catalog import Catalog, GitSource, WorkTreeSource
from envctl.lint import LintReport, format_finding, lint_catalog
from envctl.testing.handlocks import lock_files

CONFIG = """\
channels:
  conda-forge: https://conda.anaconda.org/conda-forge
  bioconda: https://bc.example
platforms: [linux-64, osx-arm64]
mutable_tags: [latest, candidate, stable, nightly, "dev-*"]
pypi_index: https://pypi.example.org/simple
"""

BASE_ENV = """\
description: Data science base
owners: [ranking]
tags:
  v1:
    channels: [conda-forge]
    dependencies: [python=3.11, numpy>=1.26, pandas]
    pypi: [itsdangerous==2.1.2]
  v2:
    extends: v1
    dependencies: [scikit-learn]
    target:
      linux-64:
        dependencies: [libgcc]
  stable: {points_to: v2}
  nightly:
    dependencies: [python=3.12, numpy]
"""

OTHER_ENV = """\
tags:
  v1:
    extends: ranking/base:v1
    pypi: [rich]
"""


def meta_text(alias: str, platforms: tuple[str, ...] = ("linux-64", "osx-arm64")) -> str:
    request = {
        "version": "1", "channels": ["conda-forge"], "dependencies": ["numpy"], "pypi": [],
        "virtual_packages": {}, "base_full_id": None, "exclude_newer": "2024-01-01T00:00:00Z",
    }
    return yamlio.dump({
        "version": "1",
        "alias": alias,
        "exclude_newer": "2024-01-01T00:00:00Z",
        "resolved_at": "2024-01-02T03:04:05Z",
        "resolved_by": "ci",
        "envctl_version": "0.1.0",
        "lock_sha256": "0" * 64,
        "platforms": {
            p: {"req_id": "a" * 40, "full_id": "b" * 40, "request": {**request, "platform": p}}
            for p in platforms
        },
    })


LOCK = "version: 1\nmetadata: {}\npackage: []\n"


def make(root: Path, files: dict[str, str | bytes], config: str | None = CONFIG) -> Catalog:
    if config is not None:
        (root / "catalog.yaml").write_text(config)
    for path, text in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            full.write_bytes(text)
        else:
            full.write_text(text)
    return Catalog(WorkTreeSource(root))


def good_files() -> dict[str, str]:
    files = {
        "catalog.yaml": CONFIG,
        "envs/.gitkeep": "",
        "locks/.gitkeep": "",
        "envs/ranking/base.yaml": BASE_ENV,
        "envs/ranking/other.yaml": OTHER_ENV,
    }
    files.update(lock_files(files, "ranking/base:v1"))  # a meta that records v1's request
    del files["catalog.yaml"]
    return files


def lint(root: Path, files: dict[str, str | bytes], config: str | None = CONFIG) -> LintReport:
    return lint_catalog(make(root, files, config))


def found(report: LintReport) -> list[tuple[str | None, int | None, str]]:
    return [(f.file, f.line, f.rule) for f in report.findings]


def only(report: LintReport, rule: str) -> list[tuple[str | None, int | None, str]]:
    return [x for x in found(report) if x[2] == rule]


# -- ok ---------------------------------------------------------------------------------


def test_good_catalog_is_ok(tmp_path: Path) -> None:
    report = lint(tmp_path, good_files())
    assert found(report) == []
    assert report.ok
    assert (report.environments, report.tags) == (2, 5)
    assert report.summary() == "2 environments, 5 tags: ok"
    assert report.to_dict() == {
        "ok": True, "environments": 2, "tags": 5, "problems": 0, "findings": [],
    }


def test_summary_counts_problems(tmp_path: Path) -> None:
    report = lint(tmp_path, {"envs/a.yaml": "tags:\n  v1: {points_to: v0}\n"})
    assert report.summary() == "2 problems in 1 environment, 1 tag"


# -- catalog.yaml -----------------------------------------------------------------------


def test_config_schema_errors_are_all_listed_and_envs_still_checked(tmp_path: Path) -> None:
    report = lint(
        tmp_path,
        {"envs/a.yaml": "tags:\n  v1:\n    dependencies: ['numpy >=>=1']\n"},
        config="colour: red\nplatforms: [amiga]\n",
    )
    assert found(report) == [
        ("catalog.yaml", 1, "schema"),
        ("catalog.yaml", 2, "schema"),
        ("envs/a.yaml", 3, "invalid-requirement"),
    ]


def test_missing_config(tmp_path: Path) -> None:
    report = lint(tmp_path, {"envs/a.yaml": "tags:\n  v1:\n    dependencies: [numpy]\n"},
                  config=None)
    assert found(report) == [("catalog.yaml", None, "not-a-catalog")]


# -- files under envs/ ------------------------------------------------------------------


def test_bad_paths(tmp_path: Path) -> None:
    ok = "tags:\n  v1:\n    dependencies: [numpy]\n"
    report = lint(tmp_path, {
        "envs/Team/env.yaml": ok,
        "envs/team/notes.md": "hi",
        "envs/team/env.yml": ok,
        "envs/team/big.yaml": "#" * (yamlio.MAX_BYTES + 1),
        "envs/team/real.yaml": ok,
    })
    os.symlink(tmp_path / "envs/team/real.yaml", tmp_path / "envs/team/link.yaml")
    report = lint_catalog(Catalog(WorkTreeSource(tmp_path)))
    assert found(report) == [
        ("envs/Team/env.yaml", None, "invalid-name"),
        ("envs/team/big.yaml", None, "file-too-large"),
        ("envs/team/env.yml", None, "not-yaml"),
        ("envs/team/link.yaml", None, "symlink"),
        ("envs/team/notes.md", None, "not-yaml"),
    ]
    by_file = {f.file: f for f in report.findings}
    assert 'did you mean "team/env"' in by_file["envs/Team/env.yaml"].message
    assert by_file["envs/team/env.yml"].fix == "rename it to envs/team/env.yaml"
    # Every environment file counts, also one that could not be read (the others are not
    # environment files).
    assert report.environments == 3


def test_unsafe_yaml(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/dup.yaml": "tags:\n  v1:\n    dependencies: [a]\n  v1:\n    dependencies: [b]\n",
        "envs/anchor.yaml": "tags:\n  v1: &x\n    dependencies: [a]\n  v2: *x\n",
    })
    assert found(report) == [
        ("envs/anchor.yaml", 2, "yaml-alias"),
        ("envs/dup.yaml", 4, "duplicate-key"),
    ]


def test_schema_errors_all_listed_and_valid_tags_still_checked(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/a.yaml": (
            "owners: team\n"  # 1
            "tags:\n"
            "  V1:\n"  # 3: bad tag name
            "    dependencies: [numpy]\n"
            "  v2:\n"
            "    dependencies: [numpy]\n"
            "    colour: red\n"  # 7: unknown key
            "  v3:\n"  # 8: empty
            "  stable: {points_to: v9}\n"  # 9: a valid pointer with a missing target
        ),
    })
    assert found(report) == [
        ("envs/a.yaml", 1, "schema"),
        ("envs/a.yaml", 3, "invalid-tag"),
        ("envs/a.yaml", 7, "schema"),
        ("envs/a.yaml", 8, "schema"),
        ("envs/a.yaml", 9, "pointer-target-missing"),
    ]
    messages = [f.message for f in report.findings]
    assert messages[0] == "owners: Input should be a valid list"
    assert messages[1].startswith('tag V1: "V1" has upper case')
    assert 'did you mean "v1"' in messages[1] + (report.findings[1].fix or "")
    assert messages[2] == "tags.v2.colour: unknown key"
    assert messages[3] == "tag v3 is empty"


# -- pointers ---------------------------------------------------------------------------


def test_pointer_rules(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/p.yaml": (
            "tags:\n"
            "  v1:\n    dependencies: [numpy]\n"  # 2
            "  v2:\n    dependencies: [numpy]\n    retired: CVE-2024-1\n"  # 4
            "  nightly:\n    dependencies: [numpy]\n"  # 7
            "  stable: {points_to: v7}\n"  # 9 missing
            "  candidate: {points_to: stable}\n"  # 10 chain
            "  latest: {points_to: nightly}\n"  # 11 mutable target
            "  dev-x: {points_to: v2}\n"  # 12 retired target
            "  v3: {points_to: v1}\n"  # 13 immutable pointer
        ),
    })
    assert found(report) == [
        ("envs/p.yaml", 9, "pointer-target-missing"),
        ("envs/p.yaml", 10, "pointer-chain"),
        ("envs/p.yaml", 11, "pointer-to-mutable"),
        ("envs/p.yaml", 12, "pointer-to-retired"),
        ("envs/p.yaml", 13, "immutable-pointer"),
    ]
    fixes = {f.rule: f.fix for f in report.findings}
    assert fixes["pointer-target-missing"] == "point it at one of: v1"
    assert fixes["pointer-chain"] == "point candidate at a concrete immutable tag (e.g. v7)"
    assert fixes["pointer-to-mutable"] == "point it at an immutable tag: v1"
    assert fixes["immutable-pointer"] == (
        "give v3 its own spec (e.g. 'extends: v1' plus dependencies), or use a mutable tag "
        "for the pointer (latest, candidate, stable, nightly, dev-*)"
    )
    assert report.findings[4].message == (
        "tag v3 is immutable, so it cannot be a pointer (points_to: v1)"
    )
    assert report.findings[4].tag == "v3"


def test_pointer_to_itself(tmp_path: Path) -> None:
    report = lint(tmp_path, {"envs/p.yaml": "tags:\n  stable: {points_to: stable}\n"})
    assert found(report) == [("envs/p.yaml", 2, "pointer-chain")]
    assert report.findings[0].message == "tag stable points to itself; pointers cannot chain"


# -- extends ----------------------------------------------------------------------------


def test_extends_rules(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/base.yaml": "tags:\n  v1:\n    dependencies: [numpy]\n",
        "envs/e.yaml": (
            "tags:\n"
            "  v1:\n    extends: v9\n    dependencies: [a]\n"  # 3 missing same env
            "  v2:\n    extends: nope/env:v1\n    dependencies: [a]\n"  # 6 missing env
            "  v3:\n    extends: base:v7\n    dependencies: [a]\n"  # 9 missing tag elsewhere
            "  v4:\n    extends: stable\n    dependencies: [a]\n"  # 12 pointer
            "  v5:\n    extends: v6\n    dependencies: [a]\n"  # 15 cycle
            "  v6:\n    extends: v5\n    dependencies: [a]\n"  # 18 cycle
            "  v7:\n    extends: base:v1\n    dependencies: [a]\n"  # ok
            "  stable: {points_to: v7}\n"
        ),
    })
    assert found(report) == [
        ("envs/e.yaml", 3, "extends-missing"),
        ("envs/e.yaml", 6, "extends-missing"),
        ("envs/e.yaml", 9, "extends-missing"),
        ("envs/e.yaml", 12, "extends-pointer"),
        ("envs/e.yaml", 15, "extends-cycle"),
        ("envs/e.yaml", 18, "extends-cycle"),
    ]
    messages = [f.message for f in report.findings]
    assert messages[1] == "tag v2 extends nope/env:v1, which does not exist (environment nope/env)"
    assert messages[2] == "tag v3 extends base:v7, which does not exist (base has no tag v7)"
    assert report.findings[3].fix == "extend the tag it points to: v7"


# -- channels, requirements, targets ----------------------------------------------------


def test_channels_and_requirements(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/r.yaml": (
            "tags:\n"
            "  v1:\n"
            "    channels: [conda-forge, internal]\n"  # 3
            "    dependencies:\n"
            "      - numpy\n"
            "      - numpy >=>=1\n"  # 6
            "      - internal::secret\n"  # 7
            "    pypi:\n"
            "      - rich\n"
            "      - not a requirement ===\n"  # 10
        ),
    })
    assert found(report) == [
        ("envs/r.yaml", 3, "unknown-channel"),
        ("envs/r.yaml", 6, "invalid-requirement"),
        ("envs/r.yaml", 7, "unknown-channel"),
        ("envs/r.yaml", 10, "invalid-requirement"),
    ]
    first = report.findings[0]
    assert first.message == "tag v1 uses channel 'internal', which catalog.yaml does not declare"
    assert first.fix == (
        "declare it under 'channels:' in catalog.yaml or use one of: conda-forge, bioconda"
    )


def test_channels_on_one_line_point_at_the_key(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/r.yaml": "tags:\n  v1:\n    channels: [internal]\n    dependencies: [numpy]\n",
    })
    assert found(report) == [("envs/r.yaml", 3, "unknown-channel")]


def test_target_platforms(tmp_path: Path) -> None:
    report = lint(tmp_path, {
        "envs/t.yaml": (
            "tags:\n"
            "  v1:\n"
            "    platforms: [linux-64]\n"
            "    dependencies: [numpy]\n"
            "    target:\n"
            "      osx-arm64:\n"  # 6: not a platform of the tag
            "        dependencies: [llvm-openmp]\n"
            "      linux-64:\n"
            "        dependencies: ['libgcc >=>=1']\n"  # 9
            "        pypi: ['bad ===']\n"  # 10
            "  v2:\n"
            "    extends: v1\n"
            "    target:\n"
            "      osx-arm64: {dependencies: [x]}\n"  # 14: inherited platforms
        ),
    })
    assert found(report) == [
        ("envs/t.yaml", 6, "target-platform"),
        ("envs/t.yaml", 9, "invalid-requirement"),
        ("envs/t.yaml", 10, "invalid-requirement"),
        ("envs/t.yaml", 14, "target-platform"),
    ]
    assert report.findings[0].message == (
        "tag v1 has target osx-arm64, which is not one of its platforms (linux-64)"
    )


def test_empty_tag_and_no_channels(tmp_path: Path) -> None:
    report = lint(
        tmp_path,
        {"envs/e.yaml": "tags:\n  v1: {}\n  v2:\n    dependencies: [numpy]\n"},
        config="platforms: [linux-64]\n",
    )
    assert found(report) == [
        ("envs/e.yaml", 2, "empty-tag"),
        ("envs/e.yaml", 3, "no-channels"),
    ]


# -- near duplicates --------------------------------------------------------------------


def test_near_duplicate_names_and_tags(tmp_path: Path) -> None:
    ok = "tags:\n  v1:\n    dependencies: [numpy]\n"
    report = lint(tmp_path, {
        "envs/team/my-env.yaml": ok,
        "envs/team/my_env.yaml": ok,
        "envs/team/tags.yaml": (
            "tags:\n  v1.0:\n    dependencies: [a]\n  v1-0:\n    dependencies: [a]\n"
        ),
    })
    assert found(report) == [
        ("envs/team/my_env.yaml", None, "near-duplicate-name"),
        ("envs/team/tags.yaml", 4, "near-duplicate-tag"),
    ]
    assert report.findings[0].message == (
        "environment team/my_env differs from environment team/my-env only by case or "
        "'-', '_', '.'"
    )


# -- locks/ -----------------------------------------------------------------------------


def test_lock_findings(tmp_path: Path) -> None:
    files = good_files()
    files.update({
        "locks/ranking/gone/v1.conda-lock.yml": LOCK,  # env does not exist
        "locks/ranking/base/v9.meta.yaml": meta_text("ranking/base:v9"),  # tag not declared
        "locks/ranking/base/stable.conda-lock.yml": LOCK,  # a pointer
        "locks/ranking/base/notes.txt": "x",  # unexpected
        "locks/ranking/base/v2.conda-lock.yml": LOCK,  # no meta beside it
        "locks/ranking/other/v1.conda-lock.yml": LOCK,
        "locks/ranking/other/v1.meta.yaml": meta_text("ranking/base:v1"),  # wrong alias
        "locks/ranking/base/nightly.conda-lock.yml": LOCK,
        "locks/ranking/base/nightly.meta.yaml": "version: '1'\nalias: ranking/base:nightly\n",
        "locks/Bad/v1.meta.yaml": "x: y\n",
    })
    report = lint(tmp_path, files)
    assert found(report) == [
        ("locks/Bad/v1.meta.yaml", None, "orphan-lock"),
        ("locks/ranking/base/nightly.meta.yaml", 1, "schema"),
        ("locks/ranking/base/nightly.meta.yaml", 1, "schema"),
        ("locks/ranking/base/nightly.meta.yaml", 1, "schema"),
        ("locks/ranking/base/nightly.meta.yaml", 1, "schema"),
        ("locks/ranking/base/notes.txt", None, "unexpected-file"),
        ("locks/ranking/base/stable.conda-lock.yml", None, "orphan-lock"),
        ("locks/ranking/base/v2.conda-lock.yml", None, "incomplete-lock"),
        ("locks/ranking/base/v9.meta.yaml", None, "orphan-lock"),
        ("locks/ranking/gone/v1.conda-lock.yml", None, "orphan-lock"),
        ("locks/ranking/other/v1.meta.yaml", 2, "meta-alias-mismatch"),
    ]
    messages = {f.file: f.message for f in report.findings}
    assert messages["locks/ranking/base/v9.meta.yaml"] == (
        "locks/ranking/base/v9.meta.yaml belongs to no declared tag: ranking/base declares no "
        "tag v9"
    )
    assert messages["locks/ranking/base/stable.conda-lock.yml"].endswith(
        "ranking/base:stable is a pointer, and pointers have no lock"
    )
    assert messages["locks/ranking/gone/v1.conda-lock.yml"].endswith(
        "environment ranking/gone does not exist (envs/ranking/gone.yaml)"
    )
    assert "resolved_at: Field required" in {f.message for f in report.findings}


# -- formatting, git revisions, speed ---------------------------------------------------


def test_format_finding(tmp_path: Path) -> None:
    report = lint(tmp_path, {"envs/p.yaml": "tags:\n  stable: {points_to: v7}\n"})
    assert [format_finding(f) for f in report.findings] == [
        "envs/p.yaml:2: tag stable points to v7, which p does not declare "
        "[pointer-target-missing] — add the immutable tag first, then point at it",
    ]


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example"}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def test_lint_a_git_revision(tmp_path: Path) -> None:
    files = good_files()
    files["envs/bad.yaml"] = "tags:\n  v1: {points_to: v0}\n"
    make(tmp_path, files)
    os.symlink("ranking/base.yaml", tmp_path / "envs/link.yaml")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "x")
    (tmp_path / "envs/bad.yaml").unlink()  # the work tree differs; the revision is linted
    report = lint_catalog(Catalog(GitSource(tmp_path, git(tmp_path, "rev-parse", "HEAD"))))
    assert found(report) == [
        ("envs/bad.yaml", 2, "immutable-pointer"),
        ("envs/bad.yaml", 2, "pointer-target-missing"),
        ("envs/link.yaml", None, "symlink"),
    ]


def test_many_environments_lint_fast(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {}
    for i in range(1000):
        files[f"envs/team{i % 10}/env{i}.yaml"] = (
            f"description: env {i}\ntags:\n"
            f"  v1:\n    dependencies: [python=3.11, numpy>=1.26, pandas, pkg{i % 50}]\n"
            f"    pypi: [itsdangerous==2.1.2]\n"
            f"  v2:\n    extends: v1\n    dependencies: [scikit-learn]\n"
            f"  stable: {{points_to: v2}}\n"
        )
    catalog = make(tmp_path, files)
    start = time.perf_counter()
    report = lint_catalog(catalog)
    elapsed = time.perf_counter() - start
    assert report.ok, found(report)[:3]
    assert (report.environments, report.tags) == (1000, 3000)
    assert elapsed < 5, f"lint of 1000 environments took {elapsed:.2f}s"


@pytest.mark.parametrize("rule", ["pointer-target-missing"])
def test_findings_are_envctl_errors(tmp_path: Path, rule: str) -> None:
    report = lint(tmp_path, {"envs/p.yaml": "tags:\n  stable: {points_to: v7}\n"})
    (finding,) = report.findings
    assert finding.to_dict() == {
        "file": "envs/p.yaml", "line": 2, "tag": "stable", "rule": rule,
        "message": "tag stable points to v7, which p does not declare",
        "fix": "add the immutable tag first, then point at it",
    }


# -- what the server would refuse ------------------------------------------------------------

LOCKED_ENV = """\
tags:
  v1:
    dependencies:
      - python=3.11
      - tinynum
    pypi: [itsdangerous==2.1.2]
  v2:
    dependencies: [python=3.12]
  stable: {points_to: v1}
"""


def locked_catalog(root: Path, env: str = LOCKED_ENV, config: str = CONFIG) -> Catalog:
    """ranking/app with v1 locked (a meta recording v1's request, as CI writes it)."""
    files = {"catalog.yaml": config, "envs/ranking/app.yaml": env}
    files.update(lock_files(files, "ranking/app:v1"))
    return make(root, files, config)


def test_a_frozen_tag_edited_in_place_is_found(tmp_path: Path) -> None:
    catalog = locked_catalog(tmp_path)
    assert lint_catalog(catalog).ok
    path = tmp_path / "envs/ranking/app.yaml"
    path.write_text(LOCKED_ENV.replace("      - tinynum\n", "      - tinynum=1.0\n"))
    report = lint_catalog(Catalog(WorkTreeSource(tmp_path)))
    [finding] = report.findings
    assert (finding.file, finding.line, finding.rule, finding.tag) == (
        "envs/ranking/app.yaml", 2, "frozen-tag-changed", "v1")
    assert finding.message == (
        "tag v1 was changed after CI locked it (locks/ranking/app/v1.meta.yaml records what it "
        "was locked for): dependencies add 'tinynum 1.0.*' and drop 'tinynum'"
    )
    assert finding.fix == "revert it and add a new tag (envctl bump ranking/app:v1 --to v3)"
    # Its own platforms, channels and extends count too.
    path.write_text(LOCKED_ENV.replace("  v1:\n", "  v1:\n    platforms: [linux-64]\n"
                                       "    channels: [bioconda]\n    extends: v2\n"))
    [finding] = lint_catalog(Catalog(WorkTreeSource(tmp_path))).findings
    assert finding.rule == "frozen-tag-changed"
    assert "platforms are linux-64, locked for linux-64, osx-arm64" in finding.message
    assert "it extends ranking/app:v2, locked on no base" in finding.message
    assert "channels are bioconda, locked with conda-forge" in finding.message


def test_what_may_change_on_a_frozen_tag(tmp_path: Path) -> None:
    """Reordering, re-spelling a requirement the same way, retiring: not changes. A new
    default in catalog.yaml is not a change of the frozen tag either."""
    locked_catalog(tmp_path)
    (tmp_path / "envs/ranking/app.yaml").write_text(LOCKED_ENV.replace(
        "      - python=3.11\n      - tinynum\n",
        "      - tinynum\n      - python 3.11.*\n").replace(
        "    pypi: [itsdangerous==2.1.2]\n",
        "    pypi: [ItsDangerous==2.1.2]\n    retired: use v2\n").replace(
        "{points_to: v1}", "{points_to: v2}"))
    (tmp_path / "catalog.yaml").write_text(
        CONFIG.replace("platforms: [linux-64, osx-arm64]", "platforms: [linux-64]")
        .replace("  conda-forge:", "  internal: https://internal.example\n  conda-forge:"))
    report = lint_catalog(Catalog(WorkTreeSource(tmp_path)))
    assert found(report) == []


def test_making_a_frozen_tag_mutable_is_the_config_finding(tmp_path: Path) -> None:
    config = CONFIG.replace('"dev-*"]', '"dev-*", "v*"]')
    catalog = locked_catalog(tmp_path)
    (tmp_path / "catalog.yaml").write_text(config)
    report = lint_catalog(Catalog(WorkTreeSource(tmp_path)))
    # Not pointer-to-mutable on stable: v1 stays immutable, the config change is refused.
    assert found(report) == [("catalog.yaml", 5, "immutable-stays-immutable")]
    assert report.findings[0].message.startswith(
        "mutable_tags would make frozen tag(s) mutable: ranking/app:v1;")
    # A tag that is not locked is simply mutable now: a pointer at it is wrong.
    (tmp_path / "envs/ranking/app.yaml").write_text(
        LOCKED_ENV.replace("{points_to: v1}", "{points_to: v2}"))
    assert found(lint_catalog(catalog)) == [
        ("catalog.yaml", 5, "immutable-stays-immutable"),
        ("envs/ranking/app.yaml", 9, "pointer-to-mutable"),
    ]


def test_pypi_requirements_need_an_index(tmp_path: Path) -> None:
    config = CONFIG.replace("pypi_index: https://pypi.example.org/simple\n", "")
    report = lint(tmp_path, {
        "envs/p.yaml": (
            "tags:\n"
            "  v1:\n    dependencies: [python=3.11]\n    pypi: [rich]\n"  # 2
            "  v2:\n    extends: v1\n    dependencies: [numpy]\n"  # 5: pins v1's PyPI packages
            "  v3:\n    dependencies: [python]\n"  # 8: no PyPI part: fine
            "  v4:\n    pypi: [rich]\n    pypi_options: {index_url: 'https://i.example/simple'}\n"
        ),
    }, config=config)
    assert found(report) == [
        ("envs/p.yaml", 4, "no-pypi-index"),
        ("envs/p.yaml", 5, "no-pypi-index"),
    ]
    assert report.findings[0].fix == (
        "set 'pypi_index:' in catalog.yaml (or 'pypi_options: {index_url: ...}' on the tag)")


@pytest.mark.parametrize(
    ("files", "summary"),
    [
        ({"envs/dup.yaml": "tags:\n  v1: {dependencies: [a]}\n  v1: {dependencies: [b]}\n"},
         "1 problem in 1 environment, 0 tags"),
        ({"envs/big.yaml": "#" * (yamlio.MAX_BYTES + 1),
          "envs/ok.yaml": "tags:\n  v1: {dependencies: [a]}\n"},
         "1 problem in 2 environments, 1 tag"),
        ({"envs/list.yaml": "- a\n- b\n"}, "1 problem in 1 environment, 0 tags"),
        ({"envs/V.yaml": "tags:\n  v1: {dependencies: [a]}\n"},
         "1 problem in 1 environment, 0 tags"),
    ],
)
def test_summary_counts_every_environment_file(tmp_path: Path, files: dict[str, str],
                                               summary: str) -> None:
    assert lint(tmp_path, files).summary() == summary
