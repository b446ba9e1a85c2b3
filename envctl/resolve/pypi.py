"""One platform's PyPI solve with uv, after the conda part and on top of it.

Why uv rather than conda-lock's pip solver: conda-lock's solver (vendored poetry)
needs a conda->PyPI name mapping that it downloads from GitHub by default and
talks to PyPI unless told not to, while ``uv pip compile`` resolves cross-platform
(``--python-version``, ``--python-platform``) against exactly the indexes on its
command line, in milliseconds, and writes a ``pylock.toml`` with one URL and
sha256 per chosen file. It ships as a wheel with its binary (the ``uv`` package).

How the conda part is respected:

- the PyPI solve targets the conda ``python``'s exact version and the platform's
  tags (manylinux level from ``__glibc``, macOS level from ``__osx``);
- every conda package that is a Python distribution (it depends on ``python``) is
  offered to uv as a *stub* wheel ``<name>-<version>+conda`` (metadata only, no
  dependencies) and pinned to it with a constraint, and kept out of the output with
  ``--no-emit-package``: a PyPI requirement that conda already satisfies is not
  installed twice, and one it cannot satisfy is a clear conflict
  ("six==1.16.0 (installed by conda)").

How ``exclude_newer`` is applied: it goes to uv as ``--exclude-newer``, so files
uploaded after it are not used, as rattler does for the conda part. uv reads
upload times from the index's JSON simple API (PEP 700 ``upload-time``) and
uses no file without one while a cut-off is set: against an index that does not
publish them, the solve fails, and :func:`explain_uv` says so instead of uv's
"no versions of ..." and names the opt-out (the catalog's ``pypi_exclude_newer``
or the tag's ``pypi_options.exclude_newer``: false sends ``exclude_newer`` None
here, and the resolver records that in the meta). uv applies no cut-off to
``--find-links`` sources, local or remote: the conda stand-ins need no upload
times, and a tag's ``pypi_options.find_links`` gets whatever they hold when it
resolves.

uv runs isolated: no config files, no ``UV_*``/``PIP_*`` variables from the caller
except the cache location and TLS choice, no Python downloads, and only the
catalog's index (never the public one).
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from envctl.errors import SolveError
from envctl.resolve.channels import redact
from envctl.resolve.lockfile import LockedPackage

UV_TIMEOUT = 600  # seconds

#: conda names whose PyPI distribution has another name. A conda package not listed
#: here that depends on python is taken to ship the PyPI distribution of its own name.
CONDA_TO_PYPI: Mapping[str, str] = {
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "py-opencv": "opencv-python",
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "tensorflow-base": "tensorflow",
    "pyqt": "pyqt5",
    "pyyaml": "pyyaml",
    "ruamel.yaml": "ruamel-yaml",
    "setuptools-scm": "setuptools-scm",
    "typing_extensions": "typing-extensions",
    "jupyter_core": "jupyter-core",
    "importlib_metadata": "importlib-metadata",
    "prompt_toolkit": "prompt-toolkit",
}
#: conda packages that depend on python but are not a PyPI distribution.
NOT_PYPI = frozenset({"python", "python_abi", "libpython-static", "python-tzdata"})

_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
_ARCH = {
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "osx-64": "x86_64",
    "osx-arm64": "aarch64",
    "win-64": "x86_64",
    "win-arm64": "aarch64",
}
_KEEP_ENV = ("UV_CACHE_DIR", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT")
_CONDA_LOCAL = "conda"


@dataclass(frozen=True)
class PypiRequest:
    platform: str
    requirements: tuple[str, ...]  # normalised PEP 508
    conda: tuple[LockedPackage, ...]  # the platform's conda solution
    virtual_packages: Mapping[str, str]
    index_url: str
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pins: tuple[str, ...] = ()  # ``name==version`` of a base's PyPI packages (extends)
    exclude_newer: datetime | None = None  # files uploaded after it are not used


def cutoff_text(moment: datetime) -> str:
    """The cut-off as envctl records and shows it: ``2024-05-01T12:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def uv_exclude_newer(moment: datetime) -> str:
    """uv's ``--exclude-newer`` value for envctl's cut-off.

    envctl's rule (and rattler's for conda) hides what was published *after* the
    cut-off; uv hides what was uploaded *at or after* it, comparing milliseconds. One
    millisecond later makes the two agree, so a file uploaded the instant a tag was
    added is used by both halves of the lock.
    """
    later = moment.astimezone(UTC) + timedelta(milliseconds=1)
    return later.strftime("%Y-%m-%dT%H:%M:%S.") + f"{later.microsecond // 1000:03d}Z"


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        raise SolveError(
            "the 'pypi:' part needs uv, which is not installed",
            rule="missing-tool",
            fix="pip install uv (it is a dependency of envctl)",
        ) from None
    return find_uv_bin()


def uv_version() -> str:
    try:
        from importlib.metadata import version

        return version("uv")
    except Exception:
        return "unknown"


def python_platform(platform: str, virtual: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """uv's ``--python-platform`` for a conda subdir, and the variables it reads with it."""
    arch = _ARCH.get(platform)
    if arch is None:
        raise SolveError(
            f"PyPI packages cannot be resolved for {platform} (uv has no target for it)",
            rule="unsupported-platform",
            fix="drop the 'pypi:' part for this platform (target: ...) or the platform",
        )
    if platform.startswith("linux"):
        glibc = virtual.get("__glibc", "")
        match = re.match(r"(\d+)\.(\d+)", glibc)
        minor = int(match.group(2)) if match and match.group(1) == "2" else 0
        usable = [m for m in _MANYLINUX_MINORS if m <= minor]
        if not usable:
            return f"{arch}-unknown-linux-gnu", {}
        return f"{arch}-manylinux_2_{usable[-1]}", {}
    if platform.startswith("osx"):
        env = {}
        osx = virtual.get("__osx", "").split("=", 1)[0]
        if re.fullmatch(r"\d+(\.\d+)*", osx):
            env["MACOSX_DEPLOYMENT_TARGET"] = osx if "." in osx else f"{osx}.0"
        return f"{arch}-apple-darwin", env
    return f"{arch}-pc-windows-msvc", {}


def conda_python_version(conda: Sequence[LockedPackage]) -> str:
    for package in conda:
        if package.name == "python":
            return package.version
    raise SolveError(
        "PyPI requirements need a python among the conda dependencies",
        rule="missing-python",
        fix="add python (e.g. 'python=3.11') to the tag's dependencies",
    )


def conda_provided(conda: Sequence[LockedPackage]) -> dict[str, str]:
    """PyPI name -> version of the Python distributions the conda part installs."""
    from packaging.version import InvalidVersion, Version

    out: dict[str, str] = {}
    for package in conda:
        deps = dict(package.dependencies)
        if package.name in NOT_PYPI or "python" not in deps:
            continue
        try:
            version = Version(package.version)
        except InvalidVersion:
            continue  # not a PEP 440 version: uv could not compare it anyway
        if version.local is not None:
            continue
        out[_canon(CONDA_TO_PYPI.get(package.name, package.name))] = str(version)
    return out


def write_stub_wheel(dest: Path, name: str, version: str) -> Path:
    """A metadata-only wheel that stands for a distribution conda installs."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = dest / f"{dist}-py3-none-any.whl"
    members = {
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: installed by conda (envctl stand-in)\n"
        ),
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: envctl\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist}.dist-info/RECORD": "",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in members.items():
            zf.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
    return path


def _uv_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("UV_", "PIP_")) or k in ("VIRTUAL_ENV", "CONDA_PREFIX"))
        or k in _KEEP_ENV
    }
    env.update(
        {
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            "NO_COLOR": "1",
        }
    )
    env.update(extra)
    return env


def solve_pypi(req: PypiRequest) -> list[LockedPackage]:
    """Resolve the PyPI requirements for one platform; [] when there are none."""
    if not req.requirements and not req.pins:
        return []
    python = conda_python_version(req.conda)
    target, extra_env = python_platform(req.platform, req.virtual_packages)
    provided = conda_provided(req.conda)
    with tempfile.TemporaryDirectory(prefix="envctl-pypi-") as tmp:
        work = Path(tmp)
        stubs = work / "conda-stubs"
        stubs.mkdir()
        for name, version in sorted(provided.items()):
            write_stub_wheel(stubs, name, f"{version}+{_CONDA_LOCAL}")
        (work / "requirements.in").write_text(
            "".join(f"{r}\n" for r in (*req.requirements, *req.pins))
        )
        (work / "constraints.txt").write_text(
            "".join(f"{n}=={v}+{_CONDA_LOCAL}\n" for n, v in sorted(provided.items()))
        )
        out = work / "pylock.toml"
        cutoff: tuple[str, ...] = ()
        if req.exclude_newer is not None:
            cutoff = ("--exclude-newer", uv_exclude_newer(req.exclude_newer))
        cmd = [
            uv_binary(),
            "pip",
            "compile",
            str(work / "requirements.in"),
            "--constraint",
            str(work / "constraints.txt"),
            "--index-url",
            req.index_url,
            *[a for url in req.extra_index_urls for a in ("--extra-index-url", url)],
            "--find-links",
            str(stubs),
            *[a for link in req.find_links for a in ("--find-links", link)],
            "--python-version",
            python,
            "--python-platform",
            target,
            *cutoff,
            "--generate-hashes",
            "--no-header",
            "--no-annotate",
            # Not --quiet: it would also drop uv's "missing an upload date" warnings, the
            # only way to tell an index without upload times from a real conflict.
            *[a for name in sorted(provided) for a in ("--no-emit-package", name)],
            "--output-file",
            str(out),
        ]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env=_uv_env(extra_env),
                timeout=UV_TIMEOUT,
                cwd=work,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise SolveError(
                f"the PyPI solve for {req.platform} took longer than {UV_TIMEOUT} s",
                rule="timeout",
                fix=f"check that the index {redact(req.index_url)} answers",
            ) from None
        if proc.returncode != 0:
            raise explain_uv(proc.stderr, req, provided)
        return parse_pylock(out.read_text(), req.platform)


def parse_pylock(text: str, platform: str) -> list[LockedPackage]:
    """Lock entries from uv's ``pylock.toml`` (PEP 751): one file, its URL and sha256 each."""
    import tomllib

    doc = tomllib.loads(text)
    out = []
    for package in doc.get("packages", []):
        files = package.get("wheels") or []
        if not files and package.get("sdist"):
            files = [package["sdist"]]
        if not files:
            raise SolveError(
                f"uv chose {package.get('name')} {package.get('version')} without a file "
                "(a direct or VCS reference?)",
                rule="unsupported-requirement",
                fix="request PyPI packages from the index, by name and version",
            )
        chosen = files[0]  # uv lists only files for the target; the first is its choice
        sha256 = (chosen.get("hashes") or {}).get("sha256")
        if not sha256:
            raise SolveError(
                f"the index gave no sha256 for {chosen.get('url')}",
                rule="missing-sha256",
                fix="use an index that publishes sha256 hashes (PEP 503 #sha256=...)",
            )
        out.append(
            LockedPackage(
                manager="pip",
                name=_canon(package["name"]),
                version=str(package["version"]),
                platform=platform,
                url=redact(chosen["url"]),
                sha256=sha256,
            )
        )
    return sorted(out, key=lambda p: p.name)


# -- errors -------------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"Because ([A-Za-z0-9_.\-]+) was not found in the package registry")
# uv's words for a file it cannot date while --exclude-newer is set (uv 0.13: a warning
# per file; some versions also say it in the resolution error).
_UNDATED_FILE = re.compile(r"`?([^\s`]+\.(?:whl|tar\.gz|zip))`? is missing an upload date")
_NO_PUBLISH_TIME = re.compile(r"([A-Za-z0-9][A-Za-z0-9._\-]*)==\S+ has no publish time")
_FILTERED_HINT = re.compile(
    r"hint: `([^`]+)` was filtered by `exclude-newer` to only include packages uploaded "
    r"before \S+?\.(?:\s|$)(.*)$"
)


def index_names(index_url: str) -> list[str]:
    """Project names the index lists (its PEP 503 root page), for suggestions."""
    import urllib.request

    try:
        request = urllib.request.Request(index_url.rstrip("/") + "/")
        with urllib.request.urlopen(request, timeout=10) as response:  # the catalog's own index
            page = response.read(5_000_000).decode("utf-8", "replace")
    except Exception:
        return []
    return sorted({_canon(m) for m in re.findall(r">([^<>]+)</a>", page)})


def _project_of(filename: str) -> str | None:
    """The normalised project name of a wheel or sdist file name (None if it is neither)."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return _canon(parse_wheel_filename(filename)[0])
        return _canon(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def undated_projects(stderr: str) -> dict[str, list[str]]:
    """Project -> the files uv found without an upload time while a cut-off was set.

    uv says so in a warning per file ("`f.whl` is missing an upload date, but user
    provided: ...") and, in some versions, in the resolution error itself ("name==1.0
    has no publish time").
    """
    out: dict[str, list[str]] = {}
    for match in _UNDATED_FILE.finditer(stderr):
        project = _project_of(match.group(1))
        if project is not None:
            out.setdefault(project, []).append(match.group(1))
    for match in _NO_PUBLISH_TIME.finditer(stderr):
        out.setdefault(_canon(match.group(1)), [])
    return out


def _index_sources(req: PypiRequest) -> str:
    """"the index X publishes" / "the indexes X, Y publish" (credentials redacted)."""
    urls = [redact(u) for u in (req.index_url, *req.extra_index_urls)]
    if len(urls) == 1:
        return f"the index {urls[0]} publishes"
    return f"the indexes {', '.join(urls)} publish"


def _without_upload_times(
    undated: Mapping[str, list[str]], text: str, req: PypiRequest
) -> SolveError | None:
    """The error for a cut-off the index cannot honour, when undated files caused the failure.

    A failure that names none of the undated projects is a real conflict and is
    explained as one.
    """
    assert req.exclude_newer is not None
    named = {_canon(token) for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9._\-]*", text)}
    culprits = sorted(p for p in undated if p in named)
    if not culprits:
        return None
    files = sorted(f for p in culprits for f in undated[p])
    example = f" (e.g. {files[0]})" if files else ""
    # uv's error names the first project it gave up on; the others it could not date
    # would fail next, so they are named too.
    others = sorted(p for p in undated if p not in culprits)
    names = [*culprits, *others]
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return SolveError(
        f"cannot apply exclude_newer {cutoff_text(req.exclude_newer)} to the PyPI part for "
        f"{req.platform}: {_index_sources(req)} no upload time for {listed}"
        f"{example}, and with a cut-off only files whose upload time is known are used",
        rule="no-upload-times",
        fix="serve the PyPI part from an index that publishes upload times (PEP 700 "
        "'upload-time' in its JSON simple API, as pypi.org does): set pypi_index in "
        "catalog.yaml or pypi_options.index_url on the tag. Or, if the index cannot, resolve "
        "the PyPI part without the cut-off: 'pypi_exclude_newer: false' in catalog.yaml, or "
        "'pypi_options: {exclude_newer: false}' on the tag; the lock stays exact (a URL and "
        "sha256 per file) and the meta records it, but a re-resolve of the tag may pick newer "
        "PyPI files",
    )


def _exclude_newer_notes(lines: list[str], req: PypiRequest) -> tuple[list[str], list[str]]:
    """uv's "filtered by `exclude-newer`" hints, reworded in envctl's terms.

    Returns the other lines and one note per filtered package. uv's own advice
    (``exclude-newer-package``) is not something a catalog can set, and its cut-off is
    a millisecond after the tag's (see :func:`uv_exclude_newer`), so both are replaced.
    """
    kept, notes = [], []
    for line in lines:
        match = _FILTERED_HINT.search(line)
        if match is None or req.exclude_newer is None:
            kept.append(line)
            continue
        rest = re.sub(r"\s*Consider using `exclude-newer-package`.*$", "", match.group(2)).strip()
        rest = re.sub(r"\bv(\d)", r"\1", rest).rstrip(".")
        note = f"{match.group(1)}: only files uploaded by {cutoff_text(req.exclude_newer)} are used"
        notes.append(f"{note}; {rest[:1].lower()}{rest[1:]}" if rest else note)
    return kept, notes


def explain_uv(stderr: str, req: PypiRequest, provided: Mapping[str, str]) -> SolveError:
    lines = [line.rstrip() for line in stderr.splitlines()]
    lines = [line for line in lines if line.strip() and not line.startswith("warning:")]
    lines, notes = _exclude_newer_notes(lines, req)
    text = " ".join(re.sub(r"^[\s×╰─▶│├└:]+", "", line).strip() for line in lines)
    text = text.replace("error: ", "").replace("cause: ", "")
    for name, version in provided.items():
        text = text.replace(f"{name}=={version}+{_CONDA_LOCAL}", f"{name}=={version} (from conda)")
    text = text.replace(f"+{_CONDA_LOCAL}", " (from conda)")
    for url in (req.index_url, *req.extra_index_urls):
        if url != redact(url):
            text = text.replace(url, redact(url))
    undated = undated_projects(stderr) if req.exclude_newer is not None else {}
    if undated:
        error = _without_upload_times(undated, text, req)
        if error is not None:
            return error
    missing = _NOT_FOUND.search(text)
    if missing:
        name = missing.group(1)
        close = difflib.get_close_matches(_canon(name), index_names(req.index_url), n=3)
        return SolveError(
            f"no PyPI package named {name!r} on {redact(req.index_url)} ({req.platform})",
            rule="unknown-package",
            fix=f"did you mean {', '.join(close)}?" if close else "check the spelling",
        )
    if "No solution found" in text or "unsatisfiable" in text:
        text = text.replace("No solution found when resolving dependencies", "").strip(" :")
        fix = "relax or remove one of the conflicting PyPI requirements"
        if notes:
            text += f" ({'; '.join(notes)})"
            fix += (
                "; packages published after exclude_newer are not used (a tag resolves with "
                "what existed when it was added): for a newer one, add a new tag"
            )
        return SolveError(
            f"cannot solve the PyPI part for {req.platform}: {text}",
            rule="unsatisfiable",
            fix=fix,
        )
    return SolveError(
        f"the PyPI solve for {req.platform} failed: {text or 'uv exited without a message'}",
        rule="pypi-failed",
        fix=f"check that the index {redact(req.index_url)} is reachable",
    )
