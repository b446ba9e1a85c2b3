"""The local PEP 503 index: pages, hashes, redirects, and real pip against it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from envctl.testing.pypi_index import (
    DEFAULT_ROOT,
    isolated_pip_env,
    normalize,
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
