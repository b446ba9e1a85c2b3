"""Resolving tags of a real catalog repo against the local channel and PyPI index."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.catalog import Catalog, WorkTreeSource
from envctl.cli.main import app
from envctl.describe import show_environment
from envctl.errors import SolveError
from envctl.meta import load_meta, parse_meta
from envctl.resolve.api import TagResult, resolve_tag
from envctl.resolve.lockfile import LockData, read_lock
from envctl.testing.channel import PackageSpec, record_for, render_package
from envctl.testing.pypi_index import serve_pypi_index

pytestmark = pytest.mark.slow

RESOLVED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
RESOLVED_BY = "ci@envctl.invalid"

# Before tinynum 2.0 / tinyframe 1.0 (2025) and after everything else used here.
MID_2024 = "2024-06-01T00:00:00Z"
LATER = "2026-01-01T00:00:00Z"


def commit(repo: Path, message: str, when: str) -> None:
    """Commit the env files with author and committer time ``when`` (ISO, UTC)."""
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    subprocess.run(["git", "add", "-A", "envs", "catalog.yaml"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, check=True, env=env)


def write_env(repo: Path, name: str, text: str) -> Path:
    path = repo / "envs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run(root: Path, alias: str, exclude_newer: str | None = MID_2024, **kw: object) -> TagResult:
    return resolve_tag(
        root,
        alias,
        resolved_at=RESOLVED_AT,
        resolved_by=RESOLVED_BY,
        exclude_newer=at(exclude_newer) if exclude_newer else None,
        **kw,  # type: ignore[arg-type]
    )


def lock_of(root: Path, env: str, tag: str) -> LockData:
    return read_lock((root / "locks" / env / f"{tag}.conda-lock.yml").read_bytes())


def versions(lock: LockData, platform: str, manager: str = "conda") -> dict[str, str]:
    return {p.name: p.version for p in lock.for_platform(platform) if p.manager == manager}


def builds(lock: LockData, platform: str) -> dict[str, str | None]:
    return {p.name: p.build for p in lock.conda(platform)}


def ids(result: TagResult) -> dict[str, str]:
    return {p.platform: p.env_id for p in result.platforms}


# -- the basics ---------------------------------------------------------------------------


def test_single_platform(catalog: Path) -> None:
    write_env(
        catalog,
        "team/lib",
        "tags:\n  v1:\n    platforms: [linux-64]\n    dependencies: [python=3.11, libalpha]\n",
    )
    result = run(catalog, "team/lib:v1")
    assert result.status == "resolved"
    lock = lock_of(catalog, "team/lib", "v1")
    assert lock.platforms == ("linux-64",)
    assert versions(lock, "linux-64") == {
        "libalpha": "1.1",
        "libbeta": "1.0",
        "libgamma": "1.2",
        "python": "3.11.99",
    }
    assert ids(result) == PINNED["single"]
    meta = parse_meta(yamlio.load((catalog / result.meta_path).read_bytes()), file="m")
    assert meta.env_ids() == ids(result)
    assert meta.exclude_newer == MID_2024
    assert meta.resolved_at == "2025-01-02T03:04:05Z"
    assert meta.resolved_by == RESOLVED_BY
    assert meta.platforms["linux-64"].request.dependencies == ["libalpha", "python 3.11.*"]


def test_multi_platform_mixed_conda_and_pypi(catalog: Path) -> None:
    write_env(
        catalog,
        "team/mixed",
        "tags:\n  v1:\n"
        "    dependencies: [python=3.11, tinycli]\n"
        "    pypi: [itsdangerous==2.1.2, importlib-metadata]\n",
    )
    result = run(catalog, "team/mixed:v1")
    lock = lock_of(catalog, "team/mixed", "v1")
    assert lock.platforms == ("linux-64", "osx-arm64")
    for platform in lock.platforms:
        # exclude_newer (mid-2024) hides tinynum 2.0 and tinyframe 1.0 (2025).
        assert versions(lock, platform)["tinynum"] == "1.1"
        assert versions(lock, platform)["tinyframe"] == "0.9"
        assert versions(lock, platform, "pip") == {
            "importlib-metadata": "8.5.0",
            "itsdangerous": "2.1.2",
            "zipp": "3.20.2",
        }
        assert all(p.sha256 and len(p.sha256) == 64 for p in lock.pypi(platform))
    assert lock.conda("linux-64")[0].url.startswith("file://")
    python = next(p for p in lock.conda("osx-arm64") if p.name == "python")
    assert "/osx-arm64/python-" in python.url
    assert ids(result) == PINNED["mixed"]


def test_exclude_newer_hides_newer_packages(catalog: Path) -> None:
    write_env(catalog, "team/num", "tags:\n  v1:\n    dependencies: [python=3.11, tinyframe]\n")
    early = run(catalog, "team/num:v1", exclude_newer="2023-12-31T00:00:00Z")
    assert versions(lock_of(catalog, "team/num", "v1"), "linux-64")["tinynum"] == "1.0"
    (catalog / early.lock_path).unlink()
    (catalog / early.meta_path).unlink()
    run(catalog, "team/num:v1", exclude_newer=LATER)
    late = versions(lock_of(catalog, "team/num", "v1"), "linux-64")
    assert (late["tinynum"], late["tinyframe"]) == ("2.0", "1.0")


def test_exclude_newer_is_the_commit_that_added_the_tag(catalog: Path) -> None:
    write_env(catalog, "team/dated", "tags:\n  v1:\n    dependencies: [python=3.11, tinynum]\n")
    commit(catalog, "add v1", "2024-04-01T12:00:00Z")
    write_env(
        catalog,
        "team/dated",
        "description: later edit\ntags:\n  v1:\n    dependencies: [python=3.11, tinynum]\n",
    )
    commit(catalog, "touch the file later", "2025-06-01T00:00:00Z")
    result = resolve_tag(catalog, "team/dated:v1", resolved_at=RESOLVED_AT, resolved_by="x")
    assert result.exclude_newer == "2024-04-01T12:00:00Z"
    assert versions(lock_of(catalog, "team/dated", "v1"), "osx-arm64")["tinynum"] == "1.1"


def test_uncommitted_tag_is_refused_without_exclude_newer(catalog: Path) -> None:
    write_env(catalog, "team/new", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    with pytest.raises(SolveError) as info:
        resolve_tag(catalog, "team/new:v1", resolved_at=RESOLVED_AT, resolved_by="x")
    assert info.value.rule == "uncommitted-tag"
    assert "--exclude-newer" in (info.value.fix or "")
    assert not (catalog / "locks/team/new").exists()


def test_per_platform_dependencies(catalog: Path) -> None:
    write_env(
        catalog,
        "team/target",
        "tags:\n  v1:\n    dependencies: [python=3.11]\n    target:\n"
        "      linux-64: {dependencies: [glibby]}\n"
        "      osx-arm64: {dependencies: [tinydata]}\n",
    )
    run(catalog, "team/target:v1")
    lock = lock_of(catalog, "team/target", "v1")
    assert "glibby" in versions(lock, "linux-64") and "tinydata" not in versions(lock, "linux-64")
    assert "tinydata" in versions(lock, "osx-arm64") and "glibby" not in versions(lock, "osx-arm64")


def test_virtual_packages_change_the_outcome(catalog: Path) -> None:
    write_env(
        catalog,
        "team/gpu",
        "tags:\n"
        "  cpu:\n    platforms: [linux-64]\n    dependencies: [python=3.11, torchlet, glibby]\n"
        "  gpu:\n    platforms: [linux-64]\n    dependencies: [python=3.11, torchlet, glibby]\n"
        "    virtual_packages: {linux-64: {__cuda: '12.0', __glibc: '2.35'}}\n",
    )
    cpu = run(catalog, "team/gpu:cpu")
    gpu = run(catalog, "team/gpu:gpu")
    assert builds(lock_of(catalog, "team/gpu", "cpu"), "linux-64")["torchlet"] == "cpu_0"
    assert versions(lock_of(catalog, "team/gpu", "cpu"), "linux-64")["glibby"] == "1.0"
    assert builds(lock_of(catalog, "team/gpu", "gpu"), "linux-64")["torchlet"] == "cuda_1"
    assert versions(lock_of(catalog, "team/gpu", "gpu"), "linux-64")["glibby"] == "2.0"
    assert cpu.platforms[0].req_id != gpu.platforms[0].req_id


def _other_channel(root: Path) -> Path:
    """A second channel inside the catalog work tree, with libalpha 9.0 (and nothing it needs)."""
    import json

    dest = root / "other-channel"
    for subdir in ("linux-64", "osx-arm64", "noarch"):
        packages = {}
        (dest / subdir).mkdir(parents=True)
        if subdir != "noarch":
            spec = PackageSpec("libalpha", "9.0", "0", subdir, "2023-01-01", files={})
            data = render_package(spec)
            (dest / subdir / spec.filename).write_bytes(data)
            packages[spec.filename] = record_for(spec.filename, data, spec.index_json())
        repodata = {"info": {"subdir": subdir}, "packages": packages, "packages.conda": {}}
        (dest / subdir / "repodata.json").write_text(json.dumps(repodata, sort_keys=True))
    return dest


def test_channel_prefix_and_relative_channel_path(catalog: Path) -> None:
    _other_channel(catalog)
    config = catalog / "catalog.yaml"
    text = config.read_text().replace("platforms:", "  other: other-channel\nplatforms:")
    config.write_text(text)
    write_env(
        catalog,
        "team/chan",
        "tags:\n"
        "  plain:\n    channels: [local, other]\n    dependencies: [python=3.11, libalpha]\n"
        "  picked:\n    channels: [local, other]\n"
        "    dependencies: [python=3.11, other::libalpha]\n",
    )
    run(catalog, "team/chan:plain")
    run(catalog, "team/chan:picked")
    plain = lock_of(catalog, "team/chan", "plain")
    picked = lock_of(catalog, "team/chan", "picked")
    assert versions(plain, "linux-64")["libalpha"] == "1.1"  # strict priority: local first
    alpha = next(p for p in picked.conda("linux-64") if p.name == "libalpha")
    assert alpha.version == "9.0"
    expected = catalog / "other-channel/linux-64/libalpha-9.0-0.tar.bz2"
    assert alpha.url == expected.resolve().as_uri()
    assert "libbeta" not in versions(picked, "linux-64")
    assert picked.channels == (
        lock_of(catalog, "team/chan", "plain").channels[0],
        (catalog / "other-channel").resolve().as_uri(),
    )


def test_pypi_package_provided_by_conda_is_not_duplicated(catalog: Path) -> None:
    write_env(
        catalog,
        "team/six",
        "tags:\n  v1:\n    platforms: [linux-64]\n"
        "    dependencies: [python=3.11, six]\n    pypi: [six, itsdangerous]\n",
    )
    run(catalog, "team/six:v1")
    lock = lock_of(catalog, "team/six", "v1")
    assert versions(lock, "linux-64")["six"] == "1.16.0"
    assert versions(lock, "linux-64", "pip") == {"itsdangerous": "2.2.0"}


def test_pypi_requirement_conda_cannot_satisfy(catalog: Path) -> None:
    write_env(
        catalog,
        "team/six",
        "tags:\n  v1:\n    platforms: [linux-64]\n"
        "    dependencies: [python=3.11, six]\n    pypi: [six>=1.17]\n",
    )
    with pytest.raises(SolveError) as info:
        run(catalog, "team/six:v1")
    assert info.value.rule == "unsatisfiable"
    assert "six==1.16.0 (from conda)" in info.value.message


def test_pypi_find_links_relative_to_the_catalog(catalog: Path) -> None:
    from envctl.resolve.pypi import write_stub_wheel

    (catalog / "wheels").mkdir()
    wheel = write_stub_wheel(catalog / "wheels", "localonly", "1.0")
    write_env(
        catalog,
        "team/local",
        "tags:\n  v1:\n    platforms: [osx-arm64]\n    dependencies: [python=3.11]\n"
        "    pypi: [localonly]\n    pypi_options: {find_links: [wheels]}\n",
    )
    run(catalog, "team/local:v1")
    (package,) = lock_of(catalog, "team/local", "v1").pypi("osx-arm64")
    assert (package.name, package.version, package.filename) == ("localonly", "1.0", wheel.name)
    assert package.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()



# -- PyPI and exclude_newer ---------------------------------------------------------------
# The local index publishes upload times (PEP 700): itsdangerous 2.1.2 on 2022-03-24 and
# 2.2.0 on 2024-04-16, midnight UTC, the build timestamps of the channel's conda builds.

ITS_2_2_0 = "2024-04-16T00:00:00Z"


def test_pypi_part_uses_what_was_uploaded_when_the_tag_was_added(catalog: Path) -> None:
    spec = "    dependencies: [python=3.11]\n    pypi: [itsdangerous]\n"
    write_env(catalog, "team/its", f"tags:\n  v1:\n{spec}  latest:\n{spec}")
    commit(catalog, "add v1 and latest", "2024-01-01T00:00:00Z")
    v1 = resolve_tag(catalog, "team/its:v1", resolved_at=RESOLVED_AT, resolved_by="x")
    latest = resolve_tag(catalog, "team/its:latest", resolved_at=RESOLVED_AT, resolved_by="x")
    assert (v1.exclude_newer, latest.exclude_newer) == ("2024-01-01T00:00:00Z", None)
    for platform in ("linux-64", "osx-arm64"):
        # v1: added before 2.2.0 was uploaded; latest: a rolling tag, no cut-off.
        assert versions(lock_of(catalog, "team/its", "v1"), platform, "pip") == {
            "itsdangerous": "2.1.2"
        }
        assert versions(lock_of(catalog, "team/its", "latest"), platform, "pip") == {
            "itsdangerous": "2.2.0"
        }


def test_pypi_and_conda_agree_on_a_cutoff_at_the_upload_instant(catalog: Path) -> None:
    """Published at the cut-off counts as not after it, for uv as for rattler."""
    for env, spec in (
        ("team/conda-its", "    dependencies: [python=3.11, itsdangerous]\n"),
        ("team/pypi-its", "    dependencies: [python=3.11]\n    pypi: [itsdangerous]\n"),
    ):
        write_env(
            catalog,
            env,
            f"tags:\n  at:\n    platforms: [linux-64]\n{spec}"
            f"  before:\n    platforms: [linux-64]\n{spec}",
        )
        run(catalog, f"{env}:at", exclude_newer=ITS_2_2_0)
        run(catalog, f"{env}:before", exclude_newer="2024-04-15T23:59:59Z")
        manager = "conda" if env == "team/conda-its" else "pip"
        assert versions(lock_of(catalog, env, "at"), "linux-64", manager)["itsdangerous"] == (
            "2.2.0"
        )
        before = versions(lock_of(catalog, env, "before"), "linux-64", manager)
        assert before["itsdangerous"] == "2.1.2"


def test_pinned_pypi_version_newer_than_the_cutoff_is_explained(catalog: Path) -> None:
    write_env(
        catalog,
        "team/pinned",
        "tags:\n  v1:\n    platforms: [linux-64]\n    dependencies: [python=3.11]\n"
        "    pypi: [itsdangerous==2.2.0]\n",
    )
    with pytest.raises(SolveError) as info:
        run(catalog, "team/pinned:v1", exclude_newer="2024-01-01T00:00:00Z")
    error = info.value
    assert error.rule == "unsatisfiable"
    assert (
        "(itsdangerous: only files uploaded by 2024-01-01T00:00:00Z are used; the requested "
        f"version, 2.2.0, was published at {ITS_2_2_0})"
    ) in error.message
    # uv's own cut-off (a millisecond later) and advice (a uv flag) are not shown.
    assert ".001Z" not in error.message and "exclude-newer-package" not in error.message
    assert "for a newer one, add a new tag" in (error.fix or "")


def test_index_without_upload_times_is_a_clear_error(catalog: Path) -> None:
    with serve_pypi_index(upload_times=False) as old:
        spec = (
            "    platforms: [linux-64]\n    dependencies: [python=3.11, six]\n"
            f"    pypi_options: {{index_url: {json.dumps(old)}}}\n"
        )
        write_env(
            catalog,
            "team/old",
            f"tags:\n  v1:\n{spec}    pypi: [itsdangerous]\n"
            # six is conda's: uv takes envctl's local stand-in, which needs no upload time.
            f"  v2:\n{spec}    pypi: [six]\n",
        )
        with pytest.raises(SolveError) as info:
            run(catalog, "team/old:v1")
        error = info.value
        assert error.rule == "no-upload-times"
        assert error.message == (
            f"cannot apply exclude_newer {MID_2024} to the PyPI part for linux-64: the index "
            f"{old} publishes no upload time for itsdangerous (e.g. itsdangerous-2.1.2-py3-none-"
            "any.whl), and with a cut-off only files whose upload time is known are used"
        )
        assert (error.file, error.tag) == ("envs/team/old.yaml", "v1")
        assert "PEP 700" in (error.fix or "") and "pypi_options.index_url" in (error.fix or "")
        # The opt-out is named, with what it costs.
        assert "pypi_exclude_newer: false" in (error.fix or "")
        assert "pypi_options: {exclude_newer: false}" in (error.fix or "")
        assert "may pick newer PyPI files" in (error.fix or "")
        assert not (catalog / "locks/team/old").exists()

        run(catalog, "team/old:v2")
        assert versions(lock_of(catalog, "team/old", "v2"), "linux-64", "pip") == {}
        # Without a cut-off the same index serves the solve.
        run(catalog, "team/old:v1", exclude_newer=None)
        assert versions(lock_of(catalog, "team/old", "v1"), "linux-64", "pip") == {
            "itsdangerous": "2.2.0"
        }


# -- opting out of the cut-off for the PyPI part ------------------------------------------
# 2024-01-01: conda's tinynum is 1.1 from 2024-03-01 on, PyPI's itsdangerous 2.2.0 from
# 2024-04-16 on; so a cut-off there gives tinynum 1.0 and itsdangerous 2.1.2.

NEW_YEAR_2024 = "2024-01-01T00:00:00Z"
OPT_SPEC = "    platforms: [linux-64]\n    dependencies: [python=3.11, tinynum]\n"


def set_config(root: Path, key: str, value: str) -> None:
    config = root / "catalog.yaml"
    lines = [line for line in config.read_text().splitlines() if not line.startswith(f"{key}:")]
    config.write_text("".join(f"{line}\n" for line in [*lines, f"{key}: {value}"]))


def meta_bytes(root: Path, result: TagResult) -> bytes:
    assert result.meta_path is not None
    return (root / result.meta_path).read_bytes()


def test_catalog_opt_out_resolves_against_an_index_without_upload_times(catalog: Path) -> None:
    with serve_pypi_index(upload_times=False) as old:
        set_config(catalog, "pypi_index", json.dumps(old))
        set_config(catalog, "pypi_exclude_newer", "false")
        write_env(
            catalog,
            "team/undated",
            f"tags:\n  v1:\n{OPT_SPEC}    pypi: [itsdangerous]\n"
            f"  conda-only:\n{OPT_SPEC}",
        )
        commit(catalog, "add v1", NEW_YEAR_2024)
        v1 = resolve_tag(catalog, "team/undated:v1", resolved_at=RESOLVED_AT, resolved_by="x")
        conda_only = resolve_tag(
            catalog, "team/undated:conda-only", resolved_at=RESOLVED_AT, resolved_by="x"
        )
    lock = lock_of(catalog, "team/undated", "v1")
    # The conda part keeps the tag's cut-off; the PyPI part gets what the index has now.
    assert versions(lock, "linux-64")["tinynum"] == "1.0"
    assert versions(lock, "linux-64", "pip") == {"itsdangerous": "2.2.0"}
    assert (v1.exclude_newer, v1.pypi_exclude_newer) == (NEW_YEAR_2024, False)
    assert "PyPI part solved without exclude_newer" in v1.message
    assert v1.to_dict()["pypi_exclude_newer"] is False
    data = meta_bytes(catalog, v1)
    assert b'"exclude_newer": "2024-01-01T00:00:00Z",\n  "pypi_exclude_newer": false,\n' in data
    meta = load_meta(data, file="m")
    assert meta.pypi_exclude_newer is False and meta.exclude_newer == NEW_YEAR_2024
    assert parse_meta(yamlio.load(data), file="m") == meta  # YAML reads the same
    # The request, hence the ids, carries the cut-off as always and not the opt-out.
    request = meta.platforms["linux-64"].request
    assert request.exclude_newer == NEW_YEAR_2024
    assert "pypi_exclude_newer" not in request.model_dump()
    # Without a PyPI part nothing was solved without the cut-off: nothing to record.
    assert conda_only.pypi_exclude_newer is True
    assert b"pypi_exclude_newer" not in meta_bytes(catalog, conda_only)
    # show tells: the cut-off held for the conda part only.
    shown = Catalog(WorkTreeSource(catalog))
    assert show_environment(shown, "team/undated:v1").to_dict()["pypi_exclude_newer"] is False
    assert show_environment(shown, "team/undated:conda-only").pypi_exclude_newer is True
    out = CliRunner().invoke(app, ["--catalog", str(catalog), "show", "team/undated:v1"],
                             env={"COLUMNS": "200"}).stdout
    assert "2024-01-01T00:00:00Z (conda only: the PyPI part was solved without it)" in out


def test_opt_out_changes_no_id(catalog: Path) -> None:
    """Same tag text, with and without the opt-out: the same req_id, like the index URL."""
    spec = f"{OPT_SPEC}    pypi: [itsdangerous]\n"
    write_env(
        catalog,
        "team/ids",
        f"tags:\n  cut:\n{spec}"
        f"  uncut:\n{spec}    pypi_options: {{exclude_newer: false}}\n",
    )
    cut = run(catalog, "team/ids:cut", exclude_newer=NEW_YEAR_2024)
    uncut = run(catalog, "team/ids:uncut", exclude_newer=NEW_YEAR_2024)
    assert cut.platforms[0].req_id == uncut.platforms[0].req_id
    assert versions(lock_of(catalog, "team/ids", "cut"), "linux-64", "pip") == {
        "itsdangerous": "2.1.2"
    }
    assert versions(lock_of(catalog, "team/ids", "uncut"), "linux-64", "pip") == {
        "itsdangerous": "2.2.0"
    }
    assert cut.platforms[0].full_id != uncut.platforms[0].full_id  # other files, other full_id
    assert (cut.pypi_exclude_newer, uncut.pypi_exclude_newer) == (True, False)


def test_tag_overrides_the_catalog_both_ways(catalog: Path) -> None:
    with serve_pypi_index(upload_times=False) as old:
        # The catalog keeps the cut-off (its default); one tag, on the undated index, opts out.
        write_env(
            catalog,
            "team/tagged",
            f"tags:\n  v1:\n{OPT_SPEC}    pypi: [itsdangerous]\n"
            f"    pypi_options: {{index_url: {json.dumps(old)}, exclude_newer: false}}\n",
        )
        v1 = run(catalog, "team/tagged:v1", exclude_newer=NEW_YEAR_2024)
        assert versions(lock_of(catalog, "team/tagged", "v1"), "linux-64", "pip") == {
            "itsdangerous": "2.2.0"
        }
        assert load_meta(meta_bytes(catalog, v1), file="m").pypi_exclude_newer is False

        # The catalog opts out; a tag on a dated index takes the cut-off back...
        set_config(catalog, "pypi_exclude_newer", "false")
        write_env(
            catalog,
            "team/strict",
            f"tags:\n  v1:\n{OPT_SPEC}    pypi: [itsdangerous]\n"
            "    pypi_options: {exclude_newer: true}\n"
            f"  undated:\n{OPT_SPEC}    pypi: [itsdangerous]\n"
            f"    pypi_options: {{index_url: {json.dumps(old)}, exclude_newer: true}}\n",
        )
        strict = run(catalog, "team/strict:v1", exclude_newer=NEW_YEAR_2024)
        assert versions(lock_of(catalog, "team/strict", "v1"), "linux-64", "pip") == {
            "itsdangerous": "2.1.2"
        }
        assert strict.pypi_exclude_newer is True
        assert b"pypi_exclude_newer" not in meta_bytes(catalog, strict)
        # ...and on the undated index that is the clear error again.
        with pytest.raises(SolveError) as info:
            run(catalog, "team/strict:undated", exclude_newer=NEW_YEAR_2024)
        assert info.value.rule == "no-upload-times"


def test_opt_out_is_inherited_with_pypi_options_through_extends(catalog: Path) -> None:
    with serve_pypi_index(upload_times=False) as old:
        write_env(
            catalog,
            "team/chain",
            f"tags:\n  v1:\n{OPT_SPEC}    pypi: [itsdangerous]\n"
            f"    pypi_options: {{index_url: {json.dumps(old)}, exclude_newer: false}}\n"
            "  v2:\n    extends: v1\n    pypi: [six]\n",
        )
        v2 = run(catalog, "team/chain:v2", exclude_newer=NEW_YEAR_2024)
    assert versions(lock_of(catalog, "team/chain", "v2"), "linux-64", "pip") == {
        "itsdangerous": "2.2.0",
        "six": "1.17.0",
    }
    assert v2.pypi_exclude_newer is False
    assert load_meta(meta_bytes(catalog, v2), file="m").pypi_exclude_newer is False


def test_default_meta_bytes_carry_no_opt_out_field(catalog: Path) -> None:
    write_env(catalog, "team/plain", f"tags:\n  v1:\n{OPT_SPEC}    pypi: [itsdangerous]\n")
    result = run(catalog, "team/plain:v1", exclude_newer=NEW_YEAR_2024)
    data = meta_bytes(catalog, result)
    assert b"pypi_exclude_newer" not in data
    assert list(json.loads(data.partition(b"\n")[2])) == [
        "version",
        "alias",
        "base",
        "exclude_newer",
        "resolved_at",
        "resolved_by",
        "envctl_version",
        "tools",
        "lock_sha256",
        "platforms",
    ]
    assert load_meta(data, file="m").pypi_exclude_newer is True
    assert result.to_dict()["pypi_exclude_newer"] is True
    assert result.message == f"wrote {result.lock_path} and {result.meta_path}"


# -- determinism --------------------------------------------------------------------------


def test_resolving_twice_gives_identical_bytes_and_ids(catalog: Path) -> None:
    write_env(
        catalog,
        "team/mixed",
        "tags:\n  v1:\n"
        "    dependencies: [python=3.11, tinycli]\n"
        "    pypi: [itsdangerous==2.1.2, importlib-metadata]\n",
    )
    first = run(catalog, "team/mixed:v1")
    lock_bytes = (catalog / first.lock_path).read_bytes()
    meta_bytes = (catalog / first.meta_path).read_bytes()
    (catalog / first.lock_path).unlink()
    (catalog / first.meta_path).unlink()
    second = run(catalog, "team/mixed:v1")
    assert (catalog / second.lock_path).read_bytes() == lock_bytes
    assert (catalog / second.meta_path).read_bytes() == meta_bytes
    assert ids(first) == ids(second) == PINNED["mixed"]


def test_frozen_tag_is_a_no_op(catalog: Path) -> None:
    write_env(catalog, "team/lib", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    first = run(catalog, "team/lib:v1")
    before = (catalog / first.lock_path).stat().st_mtime_ns
    again = run(catalog, "team/lib:v1", exclude_newer=LATER)
    assert again.status == "frozen"
    assert again.message == (
        "team/lib:v1 is locked in the work tree (not committed yet); nothing to do "
        "(--force resolves it again)"
    )
    assert ids(again) == ids(first)
    assert (catalog / first.lock_path).stat().st_mtime_ns == before
    forced = run(catalog, "team/lib:v1", exclude_newer=LATER, force=True)
    assert forced.status == "resolved" and forced.exclude_newer == LATER
    subprocess.run(["git", "add", "-A", "locks"], cwd=catalog, check=True)
    commit(catalog, "lock v1", LATER)
    committed = run(catalog, "team/lib:v1", force=True)
    assert committed.status == "frozen"
    assert committed.message == "team/lib:v1 is frozen (immutable and locked); nothing to do"
    assert committed.exclude_newer == LATER


def test_platform_subset_writes_nothing(catalog: Path) -> None:
    write_env(catalog, "team/lib", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    result = run(catalog, "team/lib:v1", platforms=["osx-arm64"])
    assert result.status == "solved-only"
    assert [p.platform for p in result.platforms] == ["osx-arm64"]
    assert not (catalog / "locks/team/lib").exists()


def test_rolling_tag_uses_no_cutoff_and_is_rewritten_only_on_change(catalog: Path) -> None:
    write_env(
        catalog,
        "team/roll",
        "tags:\n  latest:\n    dependencies: [python=3.11, tinynum]\n  stable: {points_to: v1}\n"
        "  v1:\n    dependencies: [python=3.11]\n",
    )
    first = resolve_tag(catalog, "team/roll", resolved_at=RESOLVED_AT, resolved_by="x")
    assert first.alias == "team/roll:latest" and first.exclude_newer is None
    assert versions(lock_of(catalog, "team/roll", "latest"), "linux-64")["tinynum"] == "2.0"
    second = resolve_tag(catalog, "team/roll:latest", resolved_at=at(LATER), resolved_by="y")
    assert second.status == "unchanged"
    meta = parse_meta(yamlio.load((catalog / first.meta_path).read_bytes()), file="m")
    assert meta.resolved_by == "x"
    pointer = run(catalog, "team/roll:stable")
    assert pointer.alias == "team/roll:v1"


# -- extends ------------------------------------------------------------------------------


def test_extends_same_env_pins_the_base_and_resolves_it_first(catalog: Path) -> None:
    write_env(
        catalog,
        "team/base",
        "tags:\n"
        "  v1:\n    dependencies: [python=3.11, tinycli]\n    pypi: [itsdangerous==2.1.2]\n"
        "  v2:\n    extends: v1\n    dependencies: [libalpha]\n    pypi: [importlib-metadata]\n",
    )
    v2 = run(catalog, "team/base:v2")
    assert (catalog / "locks/team/base/v1.conda-lock.yml").is_file()  # base resolved first
    base, child = lock_of(catalog, "team/base", "v1"), lock_of(catalog, "team/base", "v2")
    for platform in ("linux-64", "osx-arm64"):
        assert set(base.for_platform(platform)) <= set(child.for_platform(platform))
        assert {"libalpha", "libbeta", "libgamma"} <= set(versions(child, platform))
        assert versions(child, platform, "pip")["itsdangerous"] == "2.1.2"
    meta = parse_meta(yamlio.load((catalog / v2.meta_path).read_bytes()), file="m")
    assert meta.base == "team/base:v1"
    for platform, entry in meta.platforms.items():
        assert entry.request.base_full_id == base.full_id(platform)
        assert entry.request.dependencies == ["libalpha"]
    assert ids(v2) == PINNED["extends"]


def test_extends_across_envs(catalog: Path) -> None:
    write_env(catalog, "team/base", "tags:\n  v1:\n    dependencies: [python=3.11, tinynum]\n")
    write_env(
        catalog,
        "team/gpu/train",
        "tags:\n  v1:\n    extends: team/base:v1\n    platforms: [linux-64]\n"
        "    dependencies: [torchlet]\n",
    )
    run(catalog, "team/base:v1")
    run(catalog, "team/gpu/train:v1")
    child = lock_of(catalog, "team/gpu/train", "v1")
    assert child.platforms == ("linux-64",)
    assert set(lock_of(catalog, "team/base", "v1").for_platform("linux-64")) <= set(
        child.for_platform("linux-64")
    )
    assert builds(child, "linux-64")["torchlet"] == "cpu_0"


def test_extends_conflict_names_the_addition_and_the_pin(catalog: Path) -> None:
    write_env(catalog, "team/base", "tags:\n  v1:\n    dependencies: [python=3.11, tinyframe]\n")
    commit(catalog, "v1", MID_2024)
    write_env(
        catalog,
        "team/base",
        "tags:\n  v1:\n    dependencies: [python=3.11, tinyframe]\n"
        "  v2:\n    extends: v1\n    dependencies: [tinynum>=2, libalpha]\n",
    )
    commit(catalog, "v2", LATER)
    with pytest.raises(SolveError) as info:
        resolve_tag(catalog, "team/base:v2", resolved_at=RESOLVED_AT, resolved_by="x")
    error = info.value
    assert error.rule == "extends-conflict"
    assert "'tinynum >=2' conflicts with tinynum 1.1 (py_0) pinned by the base" in error.message
    assert "libalpha" not in error.message
    assert "team/base:v3" in (error.fix or "")
    # The base was resolved (it was unlocked) and is left as it was.
    assert versions(lock_of(catalog, "team/base", "v1"), "linux-64")["tinyframe"] == "0.9"
    assert not (catalog / "locks/team/base/v2.conda-lock.yml").exists()


# -- errors -------------------------------------------------------------------------------


def test_unsatisfiable_request_is_explained(catalog: Path) -> None:
    write_env(
        catalog,
        "team/bad",
        "tags:\n  v1:\n    dependencies: [python=3.11, tinyframe>=1, tinynum<2]\n",
    )
    with pytest.raises(SolveError) as info:
        run(catalog, "team/bad:v1", exclude_newer=LATER)
    error = info.value
    assert error.rule == "unsatisfiable"
    assert "tinyframe" in error.message and "tinynum" in error.message
    assert "\n" not in error.message and "└" not in error.message


def test_missing_virtual_package_is_explained(catalog: Path) -> None:
    write_env(
        catalog,
        "team/glibc",
        "tags:\n  v1:\n    platforms: [linux-64]\n    dependencies: [glibby>=2]\n",
    )
    with pytest.raises(SolveError) as info:
        run(catalog, "team/glibc:v1")
    assert "__glibc" in info.value.message and "__glibc=2.17" in info.value.message
    assert "virtual_packages" in (info.value.fix or "")


def test_unknown_conda_package_suggests_close_names(catalog: Path) -> None:
    write_env(catalog, "team/typo", "tags:\n  v1:\n    dependencies: [python=3.11, libalpah]\n")
    with pytest.raises(SolveError) as info:
        run(catalog, "team/typo:v1")
    assert info.value.rule == "unknown-package"
    assert "'libalpah'" in info.value.message
    assert (info.value.fix or "").startswith("did you mean libalpha")


def test_unknown_pypi_package_suggests_close_names(catalog: Path) -> None:
    write_env(
        catalog,
        "team/typo",
        "tags:\n  v1:\n    dependencies: [python=3.11]\n    pypi: [itsdangerus]\n",
    )
    with pytest.raises(SolveError) as info:
        run(catalog, "team/typo:v1")
    assert info.value.rule == "unknown-package"
    assert info.value.fix == "did you mean itsdangerous?"


# Expected ids: any change here is a breaking change for every consumer that recorded one.
PINNED: dict[str, dict[str, str]] = {
    "single": {
        "linux-64": "d6d2db5ba5d63db41560d35fd9ff4199c848d900:"
        "a6e6693cf239ca215536d56c4d163dac7d5f1c9a",
    },
    "mixed": {
        "linux-64": "b5172c5b1daba73676bc87f82337e5cfbb147938:"
        "92290f0ff24c777603e09b5b946afded8ae537b8",
        "osx-arm64": "f26686c3fc75445eac7b557cdfa559ccf784d852:"
        "a44a3b34e2b710edd45c04c873cce66c10bf76b2",
    },
    "extends": {
        "linux-64": "62dab5f2ed7c6b7a9f9774b3dd656cd294a05586:"
        "5171d64d8abc2e97d7e89ec18a21a2e172b8095f",
        "osx-arm64": "1f2ddb3f0ee4673b49e59540736d99e1ec0ef90f:"
        "c035316c483ff8d8108945e83745f78c33158cce",
    },
}


def test_tag_added_at_in_a_catalog_inside_a_larger_repo(tmp_path: Path, git_env: Path) -> None:
    from envctl.resolve.history import changed_env_files, tag_added_at

    repo = tmp_path / "repo"
    root = repo / "catalog"
    write_env(root, "team/env", "tags:\n  v1: {dependencies: [python]}\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    env = {**os.environ, "GIT_AUTHOR_DATE": MID_2024, "GIT_COMMITTER_DATE": MID_2024}
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "v1"], cwd=repo, check=True, env=env)
    assert tag_added_at(root, "envs/team/env.yaml", "v1") == at(MID_2024)
    assert tag_added_at(root, "envs/team/env.yaml", "v2") is None
    write_env(root, "team/other", "tags:\n  v1: {dependencies: [python]}\n")
    assert changed_env_files(root, "HEAD") == ["envs/team/other.yaml"]
