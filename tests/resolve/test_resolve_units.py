"""Fast tests of the resolve building blocks: ids, lockfile writer/reader, channels, uv glue."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envctl import yamlio
from envctl.errors import CatalogError, LockfileError, SolveError
from envctl.meta import Meta, PlatformMeta, dump_meta, parse_meta
from envctl.resolve.channels import ChannelRef, channel_of, channel_refs, redact
from envctl.resolve.conda import compact, rattler_spec, suggest
from envctl.resolve.extends import next_tag
from envctl.resolve.history import iso, parse_iso
from envctl.resolve.ids import file_entry, full_id, full_id_of_entries
from envctl.resolve.lockfile import LockedPackage, read_lock, write_lock
from envctl.resolve.pypi import (
    PypiRequest,
    conda_provided,
    cutoff_text,
    explain_uv,
    parse_pylock,
    python_platform,
    undated_projects,
    uv_exclude_newer,
)
from envctl.spec import Request


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def conda_pkg(
    name: str,
    version: str,
    platform: str,
    *,
    subdir: str | None = None,
    deps: tuple[tuple[str, str], ...] = (),
) -> LockedPackage:
    sub = subdir or platform
    filename = f"{name}-{version}-0.tar.bz2"
    return LockedPackage(
        manager="conda",
        name=name,
        version=version,
        build="0",
        platform=platform,
        url=f"https://example.invalid/chan/{sub}/{filename}",
        sha256=sha(filename),
        md5=hashlib.md5(filename.encode()).hexdigest(),
        dependencies=deps,
    )


def pip_pkg(name: str, version: str, platform: str) -> LockedPackage:
    filename = f"{name}-{version}-py3-none-any.whl"
    return LockedPackage(
        manager="pip",
        name=name,
        version=version,
        platform=platform,
        url=f"https://pypi.example.invalid/files/{filename}",
        sha256=sha(filename),
    )


PACKAGES = [
    conda_pkg("python", "3.11.9", "linux-64", deps=(("__glibc", ">=2.17"),)),
    conda_pkg("six", "1.16.0", "linux-64", subdir="noarch", deps=(("python", ">=3.8"),)),
    conda_pkg("python", "3.11.9", "osx-arm64"),
    conda_pkg("numlike", "1.10", "osx-arm64", deps=(("python", ""), ("libz", ">=1,<2"))),
    pip_pkg("itsdangerous", "2.1.2", "linux-64"),
    pip_pkg("itsdangerous", "2.1.2", "osx-arm64"),
]


def make_lock(packages: list[LockedPackage] = PACKAGES) -> bytes:
    return write_lock(
        alias="team/env:v1",
        platforms=["osx-arm64", "linux-64"],
        channels=["https://example.invalid/chan"],
        packages=packages,
        req_ids={"linux-64": "1" * 40, "osx-arm64": "2" * 40},
        sources=["../../envs/team/env.yaml"],
    )


# -- ids ----------------------------------------------------------------------------------


def test_full_id_definition_is_pinned() -> None:
    entries = ["b.tar.bz2#" + "b" * 64, "a.whl#" + "a" * 64]
    text = "linux-64\n" + "a.whl#" + "a" * 64 + "\n" + "b.tar.bz2#" + "b" * 64 + "\n"
    assert full_id_of_entries("linux-64", entries) == hashlib.sha1(text.encode()).hexdigest()
    assert full_id_of_entries("linux-64", reversed(entries)) == full_id_of_entries(
        "linux-64", entries
    )
    assert full_id_of_entries("osx-arm64", entries) != full_id_of_entries("linux-64", entries)


def test_full_id_of_packages_is_pinned() -> None:
    linux = [p for p in PACKAGES if p.platform == "linux-64"]
    assert full_id("linux-64", linux) == PINNED_FULL_ID
    with pytest.raises(ValueError):
        file_entry("x.whl", "nothex")


PINNED_FULL_ID = "701e595eb5134dfb3f8b393a33d6f6a51bf812d2"


# -- lockfile -----------------------------------------------------------------------------


def test_writer_is_deterministic_sorted_and_readable(
    tmp_path: Path, check_lock: Callable[[Path], None]
) -> None:
    data = make_lock()
    assert data == make_lock(list(reversed(PACKAGES)))
    text = data.decode()
    assert text.startswith("# conda-lock v1 lockfile of team/env:v1")
    names = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("- name: ")]
    assert names == ["numlike", "python", "python", "six", "itsdangerous", "itsdangerous"]
    assert "version: '1.10'" in text  # quoted: a YAML 1.1 reader must not see 1.1
    path = tmp_path / "v1.conda-lock.yml"
    path.write_bytes(data)
    check_lock(path)  # conda-lock's parser, rattler and read_lock agree
    lock = read_lock(data)
    assert lock.platforms == ("linux-64", "osx-arm64")
    assert lock.req_id("linux-64") == "1" * 40
    assert lock.alias == "team/env:v1"
    assert lock.conda("linux-64")[1].subdir == "noarch"
    assert [p.name for p in lock.pypi("osx-arm64")] == ["itsdangerous"]
    assert dict(lock.conda("osx-arm64")[0].dependencies) == {"libz": ">=1,<2", "python": ""}


TRICKY = [
    "", "a b", "a: b", "a:", "a #b", "a#b", ">=1.0", "1.10", "0", "3a9", "file:///x", "-x",
    "x-", "a,b", "[x]", "yes", "null", "~", "=", "<<", "---x", "...", "a'b", "'a", "py_0",
    "2.17", "1=x86_64", "../../x", ".5", "0o17", "2024-01-01", "a  b", "?x", ":x", "x:y",
    "a:b c", "1_000", "0x1F", "+1", "-1", "1e5", "1.5e+3", ".inf", "NaN", "Yes", "OFF", "y",
    "n", "- x", "? x", ": x", "-", "?", ":", " a", "a ", "#a", "%a", "@a", "`a", "!a", "&a",
    "*a", "|a", ">a", "{a", "}a", "a}", "a]", "a{b", "0.1.2", "1:2", "12:30:00", "190:20:30",
    "True", "~a", "<", "<=1", "!=1.0", "*", "==1.0", "1,2", '"a"', "a\\b",
]  # fmt: skip


def _document(strings: list[str]) -> dict[str, object]:
    return {
        "version": 1,
        "metadata": {"content_hash": {s or "e": s for s in strings}, "empty": {}, "none": []},
        "package": [
            {"name": s, "dependencies": {s or "e": s}, "optional": False, "l": [s, 3]}
            for s in strings
        ],
    }


def test_direct_yaml_emitter_matches_pyyaml() -> None:
    import yaml

    from envctl.resolve.lockfile import dump_yaml

    data = _document(TRICKY)
    assert dump_yaml(data) == dump_yaml(data, pure=True)
    assert yaml.safe_load(dump_yaml(data)) == data
    odd = _document(["é", "a\nb", "tab\there"])  # not printable ASCII: PyYAML writes it all
    assert dump_yaml(odd) == dump_yaml(odd, pure=True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)), max_size=8)
)
def test_direct_yaml_emitter_matches_pyyaml_on_any_ascii(strings: list[str]) -> None:
    from envctl.resolve.lockfile import dump_yaml

    data = _document(strings)
    assert dump_yaml(data) == dump_yaml(data, pure=True)


def test_writer_refuses_a_package_twice() -> None:
    with pytest.raises(LockfileError):
        make_lock([*PACKAGES, PACKAGES[0]])


def test_writer_refuses_conda_package_without_md5() -> None:
    bad = LockedPackage(
        "conda",
        "x",
        "1",
        "linux-64",
        "https://e.invalid/c/linux-64/x-1-0.tar.bz2",
        sha256="a" * 64,
        md5=None,
        build="0",
    )
    with pytest.raises(ValueError):  # conda-lock's own model says no
        make_lock([bad])


def test_reader_merges_category_duplicates_like_conda_lock() -> None:
    text = make_lock().decode()
    entry = text[text.index("- name: itsdangerous") :].split("\n- name:")[0]
    text += (
        entry.replace("category: main", "category: dev").replace(
            "optional: false", "optional: true"
        )
        + "\n"
    )
    lock = read_lock(text)
    merged = [p for p in lock.packages if p.name == "itsdangerous" and p.platform == "linux-64"]
    assert len(merged) == 1 and merged[0].categories == ("dev", "main")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata: {}\npackage: []\n", "no version"),
        ("version: 2\nmetadata: {}\npackage: []\n", "version '2' is not supported"),
        ("version: 1\nmetadata: {}\npackage: {}\n", "package must be a list"),
        (
            "version: 1\nmetadata: {}\npackage:\n- {name: a, version: '1', manager: conda,"
            " platform: linux-64, url: u, hash: {sha256: x}}\n",
            "need an md5",
        ),
    ],
)
def test_reader_errors_are_lockfile_errors(text: str, message: str) -> None:
    with pytest.raises(LockfileError) as info:
        read_lock(text, file="locks/a/v1.conda-lock.yml")
    assert message in info.value.message
    assert info.value.file == "locks/a/v1.conda-lock.yml"


def test_reader_imports_no_conda_lock() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from envctl.resolve.lockfile import read_lock; "
        "read_lock(b'version: 1\\nmetadata: {platforms: []}\\npackage: []\\n'); "
        "bad = [m for m in ('conda_lock', 'rattler', 'pydantic') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- meta ---------------------------------------------------------------------------------


def test_meta_dump_is_deterministic_and_round_trips() -> None:
    request = Request(
        platform="linux-64",
        channels=["local"],
        dependencies=["python 3.11.*"],
        pypi=[],
        virtual_packages={"__glibc": "2.17"},
        exclude_newer="2024-01-01T00:00:00Z",
    )
    meta = Meta(
        alias="team/env:v1",
        exclude_newer="2024-01-01T00:00:00Z",
        resolved_at="2025-01-01T00:00:00Z",
        resolved_by="ci",
        envctl_version="0.1.0",
        tools={"py-rattler": "0.28.0"},
        lock_sha256="a" * 64,
        platforms={
            "osx-arm64": PlatformMeta(
                req_id="1" * 40,
                full_id="2" * 40,
                request=request.model_copy(update={"platform": "osx-arm64"}),
            ),
            "linux-64": PlatformMeta(req_id="0123456789" * 4, full_id="3" * 40, request=request),
        },
    )
    data = dump_meta(meta)
    assert data == dump_meta(meta)
    assert data.index(b'"linux-64":') < data.index(b'"osx-arm64":')
    again = parse_meta(yamlio.load(data), file="m.yaml")
    assert again == meta
    assert again.env_ids()["linux-64"] == "0123456789" * 4 + ":" + "3" * 40


# -- channels -----------------------------------------------------------------------------


def test_redact_removes_credentials() -> None:
    assert redact("https://u:p@host/t/tk-1/chan/linux-64/x.conda?token=1") == (
        "https://host/chan/linux-64/x.conda"
    )
    assert redact("file:///srv/chan") == "file:///srv/chan"


def test_channel_refs_relative_paths_names_and_env_credentials(tmp_path: Path) -> None:
    (tmp_path / "chan").mkdir()
    configured = {
        "rel": "chan",
        "abs": str(tmp_path / "chan"),
        "forge": "conda-forge",
        "private": "https://${CHAN_USER}:${CHAN_PASS}@repo.invalid/t/${TOKEN}/ml/",
    }
    env = {"CHAN_USER": "me", "CHAN_PASS": "secret", "TOKEN": "tk"}
    refs = channel_refs(["rel", "abs", "forge", "private"], configured, tmp_path, environ=env)
    assert refs[0].url == refs[1].url == (tmp_path / "chan").resolve().as_uri()
    assert refs[2].url == "https://conda.anaconda.org/conda-forge"
    assert refs[3].url == "https://me:secret@repo.invalid/t/tk/ml"
    assert refs[3].public_url == "https://repo.invalid/ml"
    assert "secret" not in repr(refs[3])
    with pytest.raises(CatalogError) as info:
        channel_refs(["private"], configured, tmp_path, environ={})
    assert "CHAN_USER" in info.value.message
    with pytest.raises(CatalogError):
        channel_refs(["missing"], {"missing": "./nowhere"}, tmp_path, environ={})


def test_channel_of_and_spec_prefix() -> None:
    refs = [
        ChannelRef("a", "https://h/a", "https://h/a"),
        ChannelRef("ab", "https://h/a/b", "https://h/a/b"),
    ]
    assert channel_of("https://h/a/b/noarch/x.conda", refs).name == "ab"  # type: ignore[union-attr]
    assert channel_of("https://h/a/noarch/x.conda", refs).name == "a"  # type: ignore[union-attr]
    assert channel_of("https://other/noarch/x.conda", refs) is None
    assert rattler_spec("ab::numpy >=1", refs) == "https://h/a/b::numpy >=1"
    assert rattler_spec("numpy", refs) == "numpy"
    with pytest.raises(SolveError):
        rattler_spec("zz::numpy", refs)


def test_compact_and_suggest() -> None:
    tree = (
        "Cannot solve the request because of: glibby >=2 cannot be installed because there are "
        "no viable options:\n└─ glibby 2.0 would require\n   └─ __glibc >=2.34, for which no "
        "candidates were found.\n"
    )
    assert compact(tree) == (
        "glibby >=2 cannot be installed because there are no viable options: glibby 2.0 would "
        "require __glibc >=2.34, for which no candidates were found"
    )
    assert suggest("libalpah", ["libalpha", "python", "tinynum"]) == ["libalpha"]


def test_next_tag() -> None:
    assert next_tag("v1", ["v1", "v2", "stable"]) == "v3"
    assert next_tag("v9", ["v9"]) == "v10"
    assert next_tag("base", ["base"]) == "base-2"


def test_iso_round_trip() -> None:
    moment = datetime(2024, 5, 1, 12, 30, 15, 999, tzinfo=UTC)
    assert iso(moment) == "2024-05-01T12:30:15Z"
    assert parse_iso("2024-05-01T14:30:15+02:00") == moment.replace(microsecond=0)
    with pytest.raises(ValueError):
        parse_iso("2024-05-01T00:00:00")


# -- the uv glue --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "virtual", "target", "env"),
    [
        ("linux-64", {"__glibc": "2.17"}, "x86_64-manylinux_2_17", {}),
        ("linux-64", {"__glibc": "2.30"}, "x86_64-manylinux_2_28", {}),
        ("linux-aarch64", {"__glibc": "2.35"}, "aarch64-manylinux_2_35", {}),
        ("linux-64", {}, "x86_64-unknown-linux-gnu", {}),
        (
            "osx-arm64",
            {"__osx": "11.0"},
            "aarch64-apple-darwin",
            {"MACOSX_DEPLOYMENT_TARGET": "11.0"},
        ),
        ("osx-64", {"__osx": "12"}, "x86_64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "12.0"}),
        ("win-64", {}, "x86_64-pc-windows-msvc", {}),
    ],
)
def test_python_platform(
    platform: str, virtual: dict[str, str], target: str, env: dict[str, str]
) -> None:
    assert python_platform(platform, virtual) == (target, env)


def test_python_platform_unsupported() -> None:
    with pytest.raises(SolveError):
        python_platform("linux-ppc64le", {})


def test_conda_provided_maps_python_distributions() -> None:
    packages = [
        conda_pkg("python", "3.11.9", "linux-64"),
        conda_pkg("msgpack-python", "1.0.8", "linux-64", deps=(("python", ">=3.8"),)),
        conda_pkg("six", "1.16.0", "linux-64", deps=(("python", ""),)),
        conda_pkg("libz", "1.3", "linux-64"),
        conda_pkg("oddver", "nightly", "linux-64", deps=(("python", ""),)),  # not PEP 440
    ]
    assert conda_provided(packages) == {"msgpack": "1.0.8", "six": "1.16.0"}


def test_parse_pylock_takes_url_and_sha256() -> None:
    text = (
        'lock-version = "1.0"\n[[packages]]\nname = "Its_Dangerous"\nversion = "2.1.2"\n'
        'wheels = [{ url = "https://u:p@pypi.invalid/f/itsdangerous-2.1.2-py3-none-any.whl", '
        'hashes = { sha256 = "' + "a" * 64 + '" } }]\n'
        '[[packages]]\nname = "sdistonly"\nversion = "1.0"\n'
        'sdist = { url = "https://pypi.invalid/f/sdistonly-1.0.tar.gz", hashes = { sha256 = "'
        + "b" * 64
        + '" } }\n'
    )
    packages = parse_pylock(text, "linux-64")
    assert [(p.name, p.filename, p.sha256[:1]) for p in packages] == [  # type: ignore[index]
        ("its-dangerous", "itsdangerous-2.1.2-py3-none-any.whl", "a"),
        ("sdistonly", "sdistonly-1.0.tar.gz", "b"),
    ]
    assert "u:p@" not in packages[0].url


def test_uv_exclude_newer_is_a_millisecond_later() -> None:
    # uv drops what was uploaded at or after its cut-off, envctl what was published after.
    east = timezone(timedelta(hours=2))
    assert uv_exclude_newer(datetime(2024, 4, 16, 2, 0, tzinfo=east)) == (
        "2024-04-16T00:00:00.001Z"
    )
    assert uv_exclude_newer(datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) == (
        "2025-01-01T00:00:00.000Z"
    )
    assert cutoff_text(datetime(2024, 4, 16, 2, 0, tzinfo=east)) == "2024-04-16T00:00:00Z"


#: uv 0.13's words when a cut-off meets an index without upload times.
UNDATED_STDERR = """\
warning: `itsdangerous-2.2.0.tar.gz` is missing an upload date, but user provided: X
warning: `ItsDangerous-2.1.2-py3-none-any.whl` is missing an upload date, but user provided: X
warning: `zipp-3.20.2-py3-none-any.whl` is missing an upload date, but user provided: X
error: No solution found when resolving dependencies
  cause: Because there are no versions of itsdangerous and you require itsdangerous, we can \
conclude that your requirements are unsatisfiable.

hint: `itsdangerous` was filtered by `exclude-newer` to only include packages uploaded before \
2024-06-01T00:00:00.001Z. The latest version satisfying the requirement is v2.2.0. Consider \
using `exclude-newer-package` to override the cutoff for this package.
"""


def _pypi_request(exclude_newer: datetime | None, **kw: object) -> PypiRequest:
    return PypiRequest(
        platform="linux-64",
        requirements=("itsdangerous",),
        conda=(),
        virtual_packages={},
        index_url="https://u:secret@pypi.invalid/simple/",
        exclude_newer=exclude_newer,
        **kw,  # type: ignore[arg-type]
    )


def test_undated_projects_from_uv_words() -> None:
    assert undated_projects(UNDATED_STDERR) == {
        "itsdangerous": ["itsdangerous-2.2.0.tar.gz", "ItsDangerous-2.1.2-py3-none-any.whl"],
        "zipp": ["zipp-3.20.2-py3-none-any.whl"],
    }
    # Another uv version says it in the error instead.
    text = "Because loee-commons==0.8.0 has no publish time and there are no versions of..."
    assert undated_projects(text) == {"loee-commons": []}
    assert undated_projects("error: No solution found") == {}


def test_index_without_upload_times_names_index_cutoff_and_projects() -> None:
    req = _pypi_request(datetime(2024, 6, 1, tzinfo=UTC), extra_index_urls=("https://x.invalid/",))
    error = explain_uv(UNDATED_STDERR, req, {})
    assert error.rule == "no-upload-times"
    assert error.message == (
        "cannot apply exclude_newer 2024-06-01T00:00:00Z to the PyPI part for linux-64: the "
        "indexes https://pypi.invalid/simple/, https://x.invalid/ publish no upload time for "
        "itsdangerous, zipp (e.g. ItsDangerous-2.1.2-py3-none-any.whl), and with a cut-off only "
        "files whose upload time is known are used"
    )
    assert "secret" not in error.message
    assert "PEP 700" in (error.fix or "")


def test_undated_files_that_did_not_cause_the_failure_are_not_blamed() -> None:
    stderr = (
        "warning: `zipp-3.20.2-py3-none-any.whl` is missing an upload date, but user provided: X\n"
        "error: No solution found when resolving dependencies\n"
        "  cause: Because you require six>=1.17 and six==1.16.0 (from conda), we can conclude "
        "that your requirements are unsatisfiable.\n"
    )
    error = explain_uv(stderr, _pypi_request(datetime(2024, 6, 1, tzinfo=UTC)), {})
    assert error.rule == "unsatisfiable"
    assert "zipp" not in error.message and "upload" not in error.message
    # Without a cut-off uv never warns, but the words alone change nothing either.
    assert explain_uv(stderr, _pypi_request(None), {}).rule == "unsatisfiable"
