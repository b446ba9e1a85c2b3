"""A PEP 503 simple index on 127.0.0.1, serving vendored wheels and sdists.

``serve_pypi_index()`` scans a directory of distributions (default
``envctl/testing/data/pypi``), serves ``/simple/`` (HTML, PEP 503; JSON, PEP 691,
when the client asks for it) and ``/files/<filename>``, and yields the index
URL. Links carry ``#sha256=`` and ``data-requires-python`` (read from each
file's metadata). Non-normalised project names redirect to the PEP 503
normalised one. The server runs in a daemon thread and stops on exit.

Upload times (PEP 700): when the directory holds ``upload-times.toml`` (one
``"<file name>" = <UTC time>`` per served file), the index is API version 1.1
and its JSON pages give every file's ``upload-time`` and ``size`` and every
project's ``versions`` -- what uv's ``--exclude-newer`` reads (it has no way to
date a file from the HTML pages). Without the manifest, or with
``upload_times=False``, it is an API 1.0 index that dates nothing, like an
index that predates PEP 700. The times come from the manifest, never from the
clock or file mtimes, so every response is the same bytes on every run.

pip reads /etc/pip.conf and ``PIP_*`` variables (extra indexes, find-links,
constraints) that would leak other sources into a test; run it with
``isolated_pip_env()``.
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import json
import os
import re
import tarfile
import threading
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_ROOT = Path(__file__).resolve().parent / "data" / "pypi"
#: File name of the upload-time manifest in a distributions directory.
UPLOAD_TIMES = "upload-times.toml"

_JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_SDIST_SUFFIXES = (".tar.gz", ".zip")
# PEP 700 (1.1) adds upload-time, size and versions; 1.0 is what an older index speaks.
_API_DATED = "1.1"
_API_UNDATED = "1.0"


def normalize(name: str) -> str:
    """PEP 503 project name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Distribution:
    """One file the index serves."""

    path: Path
    project: str  # normalised
    version: str  # as the metadata spells it
    sha256: str
    size: int
    requires_python: str | None
    upload_time: str | None = None  # PEP 700 form, e.g. 2024-04-16T00:00:00Z

    @property
    def filename(self) -> str:
        return self.path.name


def _metadata(path: Path) -> Mapping[str, str]:
    """Core metadata headers of a wheel (METADATA) or an sdist (PKG-INFO)."""
    parser = email.parser.HeaderParser()
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                raise ValueError(f"{path.name}: expected one .dist-info/METADATA")
            return parser.parsestr(zf.read(names[0]).decode())
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                if re.fullmatch(r"[^/]+/PKG-INFO", member.name):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return parser.parsestr(handle.read().decode())
        raise ValueError(f"{path.name}: no top-level PKG-INFO")
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+/PKG-INFO", n)]
        if not names:
            raise ValueError(f"{path.name}: no top-level PKG-INFO")
        return parser.parsestr(zf.read(names[0]).decode())


def format_upload_time(moment: datetime) -> str:
    """PEP 700's form: UTC with a ``Z``, microseconds only when there are some."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; upload times are UTC ('Z')")
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def read_upload_times(root: Path) -> dict[str, str] | None:
    """``file name -> upload-time`` from ``root/upload-times.toml``; None without one."""
    path = Path(root) / UPLOAD_TIMES
    if not path.is_file():
        return None
    doc = tomllib.loads(path.read_text())
    table = doc.get("upload-time")
    if not isinstance(table, dict) or set(doc) != {"upload-time"}:
        raise ValueError(f"{path}: expected one [upload-time] table and nothing else")
    out = {}
    for filename, value in table.items():
        if not isinstance(value, datetime):
            raise ValueError(f"{path}: {filename} = {value!r} is not a date-time")
        out[filename] = format_upload_time(value)
    return out


def scan(root: Path, *, upload_times: bool = True) -> dict[str, list[Distribution]]:
    """Distributions under ``root`` (not recursive), by normalised project name.

    With ``upload_times`` and a manifest, every file gets its upload time; a file the
    manifest does not date, or an entry naming no file, is an error rather than an
    index that quietly dates some files and not others.
    """
    times = read_upload_times(root) if upload_times else None
    projects: dict[str, list[Distribution]] = {}
    for path in sorted(Path(root).iterdir()):
        if not (path.name.endswith(".whl") or path.name.endswith(_SDIST_SUFFIXES)):
            continue
        meta = _metadata(path)
        name = meta.get("Name")
        version = meta.get("Version")
        if not name or not version:
            raise ValueError(f"{path.name}: metadata has no Name or Version")
        requires_python = meta.get("Requires-Python")
        if times is not None and path.name not in times:
            raise ValueError(f"{path.name}: no upload time in {UPLOAD_TIMES}; add one")
        data = path.read_bytes()
        dist = Distribution(
            path=path,
            project=normalize(name),
            version=version.strip(),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            requires_python=requires_python.strip() if requires_python else None,
            upload_time=times[path.name] if times is not None else None,
        )
        projects.setdefault(dist.project, []).append(dist)
    if times is not None:
        served = {d.filename for dists in projects.values() for d in dists}
        stale = sorted(set(times) - served)
        if stale:
            raise ValueError(f"{UPLOAD_TIMES} dates files that are not here: {', '.join(stale)}")
    return projects


def api_version(projects: Mapping[str, list[Distribution]]) -> str:
    """1.1 when the index dates its files (PEP 700), else 1.0."""
    files = [d for dists in projects.values() for d in dists]
    return _API_DATED if files and all(d.upload_time for d in files) else _API_UNDATED


def _html_page(title: str, links: list[str], version: str) -> bytes:
    body = "\n".join(links)
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta name="pypi:repository-version" content="{version}">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    ).encode()


def render_root(projects: Mapping[str, list[Distribution]], version: str = _API_UNDATED) -> bytes:
    links = [f'<a href="{name}/">{name}</a><br/>' for name in sorted(projects)]
    return _html_page("Simple index", links, version)


def render_project(project: str, dists: list[Distribution], version: str = _API_UNDATED) -> bytes:
    # PEP 700 adds nothing to the HTML form: upload times are only in the JSON one.
    links = []
    for dist in dists:
        href = f"/files/{dist.filename}#sha256={dist.sha256}"
        attrs = f'href="{html.escape(href)}"'
        if dist.requires_python:
            attrs += f' data-requires-python="{html.escape(dist.requires_python)}"'
        links.append(f"<a {attrs}>{html.escape(dist.filename)}</a><br/>")
    return _html_page(f"Links for {project}", links, version)


def render_root_json(
    projects: Mapping[str, list[Distribution]], version: str = _API_UNDATED
) -> bytes:
    doc = {"meta": {"api-version": version}, "projects": [{"name": n} for n in sorted(projects)]}
    return json.dumps(doc).encode()


def _version_key(text: str) -> tuple[int, object]:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)  # not PEP 440: after the others, in text order (still deterministic)


def render_project_json(
    project: str, dists: list[Distribution], version: str = _API_UNDATED
) -> bytes:
    dated = version != _API_UNDATED
    files = []
    for dist in dists:
        entry: dict[str, object] = {
            "filename": dist.filename,
            "url": f"/files/{dist.filename}",
            "hashes": {"sha256": dist.sha256},
        }
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        if dated:  # PEP 700: size is required from 1.1 on, upload-time optional
            entry["size"] = dist.size
            if dist.upload_time:
                entry["upload-time"] = dist.upload_time
        files.append(entry)
    doc: dict[str, object] = {"meta": {"api-version": version}, "name": project}
    if dated:  # PEP 700: every version the project has, files or not
        doc["versions"] = sorted({d.version for d in dists}, key=_version_key)
    doc["files"] = files
    return json.dumps(doc).encode()


class _Handler(BaseHTTPRequestHandler):
    # Set on the per-server subclass made in serve_pypi_index.
    projects: Mapping[str, list[Distribution]] = {}
    files: Mapping[str, Distribution] = {}
    version: str = _API_UNDATED

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def do_GET(self) -> None:
        self._respond(head=False)

    def _send(self, status: int, body: bytes, content_type: str, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _respond(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        wants_json = _JSON_TYPE in self.headers.get("Accept", "")
        parts = [p for p in path.split("/") if p]
        if parts == ["simple"]:
            if not path.endswith("/"):
                return self._redirect("/simple/")
            if wants_json:
                body = render_root_json(self.projects, self.version)
                return self._send(200, body, _JSON_TYPE, head)
            body = render_root(self.projects, self.version)
            return self._send(200, body, "text/html; charset=utf-8", head)
        if len(parts) == 2 and parts[0] == "simple":
            name = normalize(parts[1])
            if name not in self.projects:
                return self._send(404, b"not found\n", "text/plain", head)
            if parts[1] != name or not path.endswith("/"):
                return self._redirect(f"/simple/{name}/")
            dists = self.projects[name]
            if wants_json:
                body = render_project_json(name, dists, self.version)
                return self._send(200, body, _JSON_TYPE, head)
            body = render_project(name, dists, self.version)
            return self._send(200, body, "text/html; charset=utf-8", head)
        if len(parts) == 2 and parts[0] == "files" and parts[1] in self.files:
            data = self.files[parts[1]].path.read_bytes()
            return self._send(200, data, "application/octet-stream", head)
        return self._send(404, b"not found\n", "text/plain", head)


@contextmanager
def serve_pypi_index(
    root: Path | None = None, host: str = "127.0.0.1", *, upload_times: bool = True
) -> Iterator[str]:
    """Serve ``root`` (default ``envctl/testing/data/pypi``) as a simple index; yields its URL.

    The URL is ``http://127.0.0.1:<port>/simple/`` on a free port picked by the OS.
    ``upload_times=False`` serves the same files as an index without PEP 700 upload
    times (API 1.0), as many private indexes still are.
    """
    root = DEFAULT_ROOT if root is None else Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no distributions directory at {root}")
    projects = scan(root, upload_times=upload_times)
    handler = type(
        "PypiIndexHandler",
        (_Handler,),
        {
            "projects": projects,
            "files": {d.filename: d for dists in projects.values() for d in dists},
            "version": api_version(projects),
        },
    )
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{port}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def isolated_pip_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a pip subprocess that sees only the indexes on its command line.

    Drops every ``PIP_*`` variable and points PIP_CONFIG_FILE at the null
    device, which makes pip skip all its config files (global, user, site).
    """
    env = {
        k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("PIP_")
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env
