"""The local PEP 503 index: pages, hashes, redirects, PEP 700 upload times, and real pip
against it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from envctl.testing.channel import LocalChannel
from envctl.testing.pypi_index import (
    DEFAULT_ROOT,
    format_upload_time,
    isolated_pip_env,
    normalize,
    read_upload_times,
    scan,
    serve_pypi_index,
)


def _get(url: str, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.url, response.read()


def test_normalize() -> None:
    assert normalize("Importlib_Metadata") == "importlib-metadata"
    assert normalize("flit.core") == "flit-core"
    assert normalize("A__b-.C") == "a-b-c"


def test_root_lists_normalized_projects(pypi_index: str) -> None:
    assert pypi_index.startswith("http://127.0.0.1:") and pypi_index.endswith("/simple/")
    _, body = _get(pypi_index)
    page = body.decode()
    for name in ("itsdangerous", "six", "importlib-metadata", "zipp", "flit-core"):
        assert f'<a href="{name}/">{name}</a>' in page


def test_project_page_has_hashes_and_requires_python(pypi_index: str) -> None:
    _, body = _get(pypi_index + "itsdangerous/")
    page = body.decode()
    for path in sorted(DEFAULT_ROOT.glob("itsdangerous-*")):
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f'href="/files/{path.name}#sha256={sha256}"' in page
    assert 'data-requires-python="&gt;=3.7">itsdangerous-2.1.2-py3-none-any.whl' in page
    assert 'data-requires-python="&gt;=3.8">itsdangerous-2.2.0.tar.gz' in page


def test_non_normalized_name_redirects(pypi_index: str) -> None:
    url, body = _get(pypi_index + "Importlib_Metadata")
    assert url == pypi_index + "importlib-metadata/"
    assert b"importlib_metadata-8.5.0-py3-none-any.whl" in body


def test_unknown_project_and_file_are_404(pypi_index: str) -> None:
    for url in (pypi_index + "no-such-project/", pypi_index.replace("/simple/", "/files/x.whl")):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(url)
        assert err.value.code == 404


def test_files_are_served_byte_for_byte(pypi_index: str) -> None:
    base = pypi_index.removesuffix("simple/")
    for dists in scan(DEFAULT_ROOT).values():
        for dist in dists:
            _, body = _get(f"{base}files/{dist.filename}")
            assert hashlib.sha256(body).hexdigest() == dist.sha256


def test_json_api(pypi_index: str) -> None:
    accept = "application/vnd.pypi.simple.v1+json"
    _, body = _get(pypi_index + "zipp/", accept)
    doc = json.loads(body)
    assert doc["name"] == "zipp"
    (entry,) = doc["files"]
    assert entry["filename"] == "zipp-3.20.2-py3-none-any.whl"
    assert entry["requires-python"] == ">=3.8"
    assert len(entry["hashes"]["sha256"]) == 64


def test_server_stops_on_exit() -> None:
    with serve_pypi_index() as url:
        _get(url)
    with pytest.raises(urllib.error.URLError):
        _get(url)


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *args, "--no-cache-dir"]
    proc = subprocess.run(cmd, cwd=cwd, env=isolated_pip_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_pip_installs_from_the_index_only(pypi_index: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    _pip(
        "install",
        "--no-deps",
        "--target",
        str(target),
        "--index-url",
        pypi_index,
        "itsdangerous==2.1.2",
        cwd=tmp_path,
    )
    assert (target / "itsdangerous" / "__init__.py").is_file()
    assert (target / "itsdangerous-2.1.2.dist-info").is_dir()

    # With dependencies: zipp comes from the index too.
    with_deps = tmp_path / "with-deps"
    _pip(
        "install",
        "--target",
        str(with_deps),
        "--index-url",
        pypi_index,
        "importlib-metadata==8.5.0",
        cwd=tmp_path,
    )
    assert (with_deps / "zipp-3.20.2.dist-info").is_dir()


@pytest.mark.slow
def test_pip_downloads_and_builds_an_sdist_offline(pypi_index: str, tmp_path: Path) -> None:
    # Build isolation installs flit_core from the same index: nothing else is reachable.
    _pip(
        "download",
        "--no-deps",
        "--no-binary",
        "itsdangerous",
        "--dest",
        str(tmp_path / "dl"),
        "--index-url",
        pypi_index,
        "itsdangerous==2.2.0",
        cwd=tmp_path,
    )
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["itsdangerous-2.2.0.tar.gz"]


# -- upload times (PEP 700) ---------------------------------------------------------------

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"


def _pages(index: str) -> dict[str, bytes]:
    """Every page the index serves, HTML and JSON, by a stable label."""
    pages = {}
    for name in ["", *(f"{p}/" for p in sorted(scan(DEFAULT_ROOT)))]:
        for accept in (HTML, JSON):
            pages[f"{name or '/'} {accept}"] = _get(index + name, accept)[1]
    return pages


def test_json_api_publishes_upload_times(pypi_index: str) -> None:
    _, body = _get(pypi_index + "itsdangerous/", JSON)
    doc = json.loads(body)
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["versions"] == ["2.1.2", "2.2.0"]
    times = {f["filename"]: f["upload-time"] for f in doc["files"]}
    assert times == {
        "itsdangerous-2.1.2-py3-none-any.whl": "2022-03-24T00:00:00Z",
        "itsdangerous-2.2.0-py3-none-any.whl": "2024-04-16T00:00:00Z",
        "itsdangerous-2.2.0.tar.gz": "2024-04-16T00:00:00Z",
    }
    for entry in doc["files"]:
        assert entry["size"] == (DEFAULT_ROOT / entry["filename"]).stat().st_size
    # The whole of one page, so a change to the served bytes is a deliberate one.
    _, body = _get(pypi_index + "zipp/", JSON)
    assert json.loads(body) == {
        "meta": {"api-version": "1.1"},
        "name": "zipp",
        "versions": ["3.20.2"],
        "files": [
            {
                "filename": "zipp-3.20.2-py3-none-any.whl",
                "url": "/files/zipp-3.20.2-py3-none-any.whl",
                "hashes": {
                    "sha256": "a817ac80d6cf4b23bf7f2828b7cabf326f15a001bea8b1f9b49631780ba28350"
                },
                "requires-python": ">=3.8",
                "size": 9200,
                "upload-time": "2023-08-01T00:00:00Z",
            }
        ],
    }
    _, page = _get(pypi_index, HTML)
    assert b'<meta name="pypi:repository-version" content="1.1">' in page


#: sha256 of every page the default index serves (see _pages). Changing the vendored
#: files, their upload times or the page format changes it: update it on purpose.
PINNED_PAGES_SHA256 = "1c645c68fffffc575b57fc8384df4f0099c88818a209a67a243dffe5b416c81a"


def test_every_page_is_the_same_bytes_on_every_run(pypi_index: str) -> None:
    first = _pages(pypi_index)
    with serve_pypi_index() as other:  # another server, another port: the same bytes
        assert _pages(other) == first
    digest = hashlib.sha256()
    for label, body in sorted(first.items()):
        digest.update(f"{label}\n{len(body)}\n".encode() + body)
    assert digest.hexdigest() == PINNED_PAGES_SHA256


def test_every_vendored_file_has_an_upload_time() -> None:
    times = read_upload_times(DEFAULT_ROOT)
    assert times is not None
    served = {d.filename for dists in scan(DEFAULT_ROOT).values() for d in dists}
    assert set(times) == served
    versions = {}
    for dist in scan(DEFAULT_ROOT)["itsdangerous"]:
        versions.setdefault(dist.version, set()).add(dist.upload_time)
    # Different versions, different times: a cut-off between them tells them apart.
    assert versions == {"2.1.2": {"2022-03-24T00:00:00Z"}, "2.2.0": {"2024-04-16T00:00:00Z"}}


def test_itsdangerous_is_dated_as_in_the_conda_channel(channel: LocalChannel) -> None:
    """A cut-off picks the same itsdangerous from the channel (build timestamp) and the
    index (upload time)."""
    repodata = json.loads((channel.path / "noarch" / "repodata.json").read_bytes())
    stamps = {
        r["version"]: datetime.fromtimestamp(r["timestamp"] / 1000, UTC)
        for r in repodata["packages"].values()
        if r["name"] == "itsdangerous"
    }
    uploads = {d.version: d.upload_time for d in scan(DEFAULT_ROOT)["itsdangerous"]}
    assert {v: format_upload_time(t) for v, t in stamps.items()} == uploads


def test_index_without_upload_times_is_api_1_0() -> None:
    with serve_pypi_index(upload_times=False) as url:
        doc = json.loads(_get(url + "itsdangerous/", JSON)[1])
        page = _get(url, HTML)[1]
    assert doc["meta"] == {"api-version": "1.0"}
    assert "versions" not in doc
    assert all(set(f) == {"filename", "url", "hashes", "requires-python"} for f in doc["files"])
    assert b'<meta name="pypi:repository-version" content="1.0">' in page


def _copy(names: list[str], dest: Path, manifest: str | None) -> Path:
    dest.mkdir()
    for name in names:
        (dest / name).write_bytes((DEFAULT_ROOT / name).read_bytes())
    if manifest is not None:
        (dest / "upload-times.toml").write_text(manifest)
    return dest


def test_a_folder_without_a_manifest_dates_nothing(tmp_path: Path) -> None:
    root = _copy(["six-1.17.0-py2.py3-none-any.whl"], tmp_path / "plain", None)
    (dist,) = scan(root)["six"]
    assert dist.upload_time is None
    with serve_pypi_index(root) as url:
        assert json.loads(_get(url, JSON)[1])["meta"] == {"api-version": "1.0"}


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ("[upload-time]\n", "six-1.17.0-py2.py3-none-any.whl: no upload time"),
        (
            '[upload-time]\n"six-1.17.0-py2.py3-none-any.whl" = 2023-06-01T00:00:00Z\n'
            '"gone-1.0-py3-none-any.whl" = 2023-06-01T00:00:00Z\n',
            "dates files that are not here: gone-1.0-py3-none-any.whl",
        ),
        (
            '[upload-time]\n"six-1.17.0-py2.py3-none-any.whl" = 2023-06-01T00:00:00\n',
            "has no time zone",
        ),
        ('[upload-time]\n"six-1.17.0-py2.py3-none-any.whl" = "soon"\n', "is not a date-time"),
        ('"six-1.17.0-py2.py3-none-any.whl" = 2023-06-01T00:00:00Z\n', "one [upload-time]"),
    ],
)
def test_a_bad_manifest_is_refused(tmp_path: Path, manifest: str, problem: str) -> None:
    root = _copy(["six-1.17.0-py2.py3-none-any.whl"], tmp_path / "dated", manifest)
    with pytest.raises(ValueError) as info:
        scan(root)
    assert problem in str(info.value)


def test_upload_time_format() -> None:
    assert format_upload_time(datetime(2024, 4, 16, tzinfo=UTC)) == "2024-04-16T00:00:00Z"
    east = timezone(timedelta(hours=2))
    moment = datetime(2024, 4, 16, 2, 0, 0, 1500, tzinfo=east)
    assert format_upload_time(moment) == "2024-04-16T00:00:00.001500Z"
