"""A small, byte-deterministic conda channel for tests and the demo.

``build_channel(dest)`` writes ``linux-64``, ``osx-arm64`` and ``noarch``
subdirs with generated packages plus a few real ones (wheels converted with
whl2conda, vendored under ``envctl/testing/data/conda``), and a ``repodata.json`` per
subdir. Every byte is a pure function of this file and the vendored files:
archive members have fixed mtimes and owners and are sorted, compression is
bzip2 at a fixed level, JSON is written with sorted keys. So the sha256 of
each repodata.json is pinned in ``REPODATA_SHA256`` (and checked by a test),
and every id computed from a solve against this channel holds across
machines.

repodata.json is written here rather than by ``rattler.index.index_fs``:
rattler's indexer adds its own fields and version-dependent layout, which
would make the pinned hashes follow the rattler version. A test checks that
rattler's indexer agrees with these records field by field.

What the channel offers (see ``package_specs``):

- ``python 3.11.99``: no interpreter inside. Its post-link script makes the
  prefix a venv-style home of a host CPython 3.11 found at install time
  (see ``envctl.testing.hostpython``), so the package bytes hold no host path.
  The version is fixed (not taken from the host) to keep the bytes identical
  everywhere; it matches hosts and CI running CPython 3.11.
- ``libalpha -> libbeta -> libgamma``: a dependency chain, several versions,
  and a text file with a prefix placeholder that the installer rewrites.
- ``torchlet``: a ``cuda`` build (needs ``__cuda``) and a ``cpu`` build.
- ``glibby 2.0`` needs ``__glibc >=2.34``; ``glibby 1.0`` needs nothing.
- ``tinynum`` 1.0 (2023), 1.1 (2024), 2.0 (2025); ``tinyframe`` 0.9/1.0 on top
  of it; ``tinycli`` with an entry point: ``noarch: python`` packages whose
  modules define ``__version__``. Their dates make ``exclude_newer`` pick
  older versions.
- ``tinydata``: ``noarch: generic``.
- vendored real packages: requests and its pure-Python dependencies, six,
  itsdangerous 2.1.2 and 2.2.0.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUBDIRS: tuple[str, ...] = ("linux-64", "osx-arm64", "noarch")
ARCH_SUBDIRS: tuple[str, ...] = ("linux-64", "osx-arm64")

PYTHON_VERSION = "3.11.99"
PYTHON_MAJOR_MINOR = "3.11"

# Long and unlikely, like conda-build's placeholder, so replacing it cannot hit other text.
PREFIX_PLACEHOLDER = "/opt/envctl-test-channel/build_placehold_placehold_placehold_placehold"

VENDORED_DIR = Path(__file__).resolve().parent / "data" / "conda"

BZ2_LEVEL = 9

# sha256 of each subdir's repodata.json. Changing any package changes these on
# purpose: every id pinned against this channel changes with them.
REPODATA_SHA256: dict[str, str] = {
    "linux-64": "e19c59975f60292cb2acb1eb727027d1bae015e9f5246a8e02414ab7adc6d346",
    "osx-arm64": "6d264b193eb5016dfcc9e5ee1b712daf80bdb7c2135ea058bc51300e45e92d13",
    "noarch": "711afb8c6965221a3d38dea6e84496dee4139078a075c4e9887331244dd511cd",
}

_ARCH = {"linux-64": ("x86_64", "linux"), "osx-arm64": ("arm64", "osx")}


@dataclass(frozen=True)
class PackageFile:
    """One file of a generated package."""

    data: bytes
    executable: bool = False
    # A text file holding PREFIX_PLACEHOLDER, which the installer replaces by the prefix.
    has_prefix: bool = False


@dataclass(frozen=True)
class PackageSpec:
    """A generated package: its metadata and files."""

    name: str
    version: str
    build: str
    subdir: str
    date: str  # YYYY-MM-DD, the build timestamp (midnight UTC)
    files: Mapping[str, PackageFile]
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    build_number: int = 0
    noarch: str | None = None  # "python" or "generic"
    entry_points: tuple[str, ...] = ()
    track_features: str = ""
    license: str = "MIT"
    summary: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"

    @property
    def epoch_seconds(self) -> int:
        return int(datetime.strptime(self.date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())

    def index_json(self) -> dict[str, Any]:
        index: dict[str, Any] = {
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "license": self.license,
            "name": self.name,
            "subdir": self.subdir,
            # conda stores build timestamps in milliseconds.
            "timestamp": self.epoch_seconds * 1000,
            "version": self.version,
        }
        if self.subdir in _ARCH:
            index["arch"], index["platform"] = _ARCH[self.subdir]
        if self.noarch:
            index["noarch"] = self.noarch
        if self.constrains:
            index["constrains"] = list(self.constrains)
        if self.track_features:
            index["track_features"] = self.track_features
        return index


@dataclass(frozen=True)
class LocalChannel:
    """A built channel: its directory and ``file://`` URL (usable as a path)."""

    path: Path

    @property
    def url(self) -> str:
        return channel_url(self.path)

    def __fspath__(self) -> str:
        return str(self.path)


def channel_url(path: Path | str) -> str:
    """The ``file://`` URL of a channel directory (absolute, no trailing slash)."""
    return Path(path).resolve().as_uri()


def dumps_json(obj: object) -> bytes:
    """The one JSON encoding used for every file in the channel: sorted keys, UTF-8, LF."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_tar_bz2(members: Mapping[str, tuple[bytes, int]], mtime: int) -> bytes:
    """A bzip2 tarball that depends only on its input.

    ``members`` maps archive path -> (bytes, mode). Members are sorted, owner
    is root with empty names, every mtime is ``mtime``; GNU format keeps long
    names without PAX headers (which would carry float mtimes).
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(members):
            data, mode = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return bz2.compress(raw.getvalue(), BZ2_LEVEL)


def read_tar_bz2(data: bytes) -> dict[str, tuple[bytes, int]]:
    """All regular-file members of a .tar.bz2 as path -> (bytes, mode)."""
    out: dict[str, tuple[bytes, int]] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tar:
        for info in tar.getmembers():
            if not info.isfile():
                if info.isdir():
                    continue
                raise ValueError(f"unsupported member {info.name!r} (only regular files)")
            handle = tar.extractfile(info)
            assert handle is not None
            out[info.name] = (handle.read(), info.mode)
    return out


def render_package(spec: PackageSpec) -> bytes:
    """The .tar.bz2 bytes of a generated package."""
    members: dict[str, tuple[bytes, int]] = {}
    paths: list[dict[str, Any]] = []
    has_prefix_lines: list[str] = []
    for path in sorted(spec.files):
        f = spec.files[path]
        members[path] = (f.data, 0o755 if f.executable else 0o644)
        entry: dict[str, Any] = {
            "_path": path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(f.data).hexdigest(),
            "size_in_bytes": len(f.data),
        }
        if f.has_prefix:
            entry["file_mode"] = "text"
            entry["prefix_placeholder"] = PREFIX_PLACEHOLDER
            has_prefix_lines.append(f"{PREFIX_PLACEHOLDER} text {path}\n")
        paths.append(entry)

    info: dict[str, bytes] = {
        "info/index.json": dumps_json(spec.index_json()),
        "info/paths.json": dumps_json({"paths": paths, "paths_version": 1}),
        "info/files": "".join(f"{p}\n" for p in sorted(spec.files)).encode(),
        "info/about.json": dumps_json(
            {
                "license": spec.license,
                "summary": spec.summary or f"{spec.name} (envctl test channel)",
            }
        ),
    }
    if has_prefix_lines:
        info["info/has_prefix"] = "".join(has_prefix_lines).encode()
    if spec.noarch == "python":
        noarch: dict[str, Any] = {"type": "python"}
        if spec.entry_points:
            noarch["entry_points"] = list(spec.entry_points)
        info["info/link.json"] = dumps_json({"noarch": noarch, "package_metadata_version": 1})
    for name, data in info.items():
        members[name] = (data, 0o644)
    return write_tar_bz2(members, spec.epoch_seconds)


def record_for(filename: str, data: bytes, index: Mapping[str, Any]) -> dict[str, Any]:
    """The repodata.json record of a package: its index.json plus size and hashes."""
    record = {k: v for k, v in index.items() if v is not None}
    if "timestamp" not in record:
        raise ValueError(f"{filename}: index.json has no timestamp; every record needs one")
    record["md5"] = hashlib.md5(data).hexdigest()
    record["sha256"] = hashlib.sha256(data).hexdigest()
    record["size"] = len(data)
    return record


def index_json_of(data: bytes) -> dict[str, Any]:
    """info/index.json of a .tar.bz2 package."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tar:
        handle = tar.extractfile("info/index.json")
        if handle is None:
            raise ValueError("info/index.json is not a regular file")
        index: dict[str, Any] = json.loads(handle.read())
    return index


def build_channel(dest: Path, *, vendored: Path | None = None, overwrite: bool = False) -> Path:
    """Write the test channel into ``dest`` (created; must be empty unless ``overwrite``).

    ``vendored`` is the directory holding ``noarch/*.tar.bz2`` converted real
    packages (default: ``envctl/testing/data/conda`` of this repository).
    Returns ``dest``.
    """
    dest = Path(dest)
    vendored = VENDORED_DIR if vendored is None else Path(vendored)
    if dest.exists() and any(dest.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{dest} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(dest)

    records: dict[str, dict[str, dict[str, Any]]] = {subdir: {} for subdir in SUBDIRS}

    def add(subdir: str, filename: str, data: bytes, index: Mapping[str, Any]) -> None:
        if index.get("subdir") != subdir:
            raise ValueError(f"{filename}: subdir {index.get('subdir')!r}, expected {subdir!r}")
        if filename in records[subdir]:
            raise ValueError(f"{subdir}/{filename} is defined twice")
        (dest / subdir / filename).write_bytes(data)
        records[subdir][filename] = record_for(filename, data, index)

    for subdir in SUBDIRS:
        (dest / subdir).mkdir(parents=True, exist_ok=True)
    for spec in package_specs():
        add(spec.subdir, spec.filename, render_package(spec), spec.index_json())

    vendored_noarch = vendored / "noarch"
    if not vendored_noarch.is_dir():
        raise FileNotFoundError(
            f"vendored conda packages not found in {vendored_noarch}; "
            "run scripts/vendor_packages.py or pass vendored="
        )
    for path in sorted(vendored_noarch.glob("*.tar.bz2")):
        data = path.read_bytes()
        add("noarch", path.name, data, index_json_of(data))

    for subdir in SUBDIRS:
        repodata = {
            "info": {"subdir": subdir},
            "packages": records[subdir],
            "packages.conda": {},
            "removed": [],
            "repodata_version": 1,
        }
        (dest / subdir / "repodata.json").write_bytes(dumps_json(repodata))
    return dest


def repodata_sha256(channel: Path) -> dict[str, str]:
    """sha256 of each subdir's repodata.json of a built channel."""
    return {
        subdir: hashlib.sha256((Path(channel) / subdir / "repodata.json").read_bytes()).hexdigest()
        for subdir in SUBDIRS
    }


# ---------------------------------------------------------------------------
# The generated packages


def _text(s: str, *, executable: bool = False, has_prefix: bool = False) -> PackageFile:
    return PackageFile(s.encode(), executable=executable, has_prefix=has_prefix)


def _module(name: str, version: str, body: str = "") -> dict[str, PackageFile]:
    source = f'"""{name}: a tiny module from envctl\'s test channel."""\n\n'
    source += f'__version__ = "{version}"\n'
    if body:
        source += "\n" + body
    return {f"site-packages/{name}/__init__.py": _text(source)}


# bash, run by the installer with PREFIX, PKG_NAME and PKG_VERSION set (conda's
# post-link contract; rattler runs it when execute_link_scripts=True). Kept in
# step with envctl.testing.hostpython.link_host_python, which does the same
# for installers that do not run link scripts.
PYTHON_POST_LINK = r"""#!/bin/bash
# envctl test channel: this "python" package ships no interpreter. Make $PREFIX a
# venv-style prefix of a host CPython with the same major.minor, found now, so
# the package itself holds no host path. Override with ENVCTL_HOST_PYTHON.
want="${PKG_VERSION%.*}"
probe='import os, platform, sys
b = getattr(sys, "_base_executable", "") or sys.executable
print("%d.%d" % sys.version_info[:2], platform.python_version(), os.path.realpath(b))'
real=""
for cand in "${ENVCTL_HOST_PYTHON:-}" "python${want}" python3; do
    [ -n "$cand" ] || continue
    out=$("$cand" -c "$probe" 2>/dev/null) || continue
    ver="${out%% *}"
    rest="${out#* }"
    full="${rest%% *}"
    path="${rest#* }"
    if [ "$ver" = "$want" ] && [ -x "$path" ]; then
        real="$path"
        break
    fi
done
if [ -z "$real" ]; then
    echo "envctl test python: no host python${want} found; set ENVCTL_HOST_PYTHON" >&2
    exit 1
fi
mkdir -p "$PREFIX/bin" || exit 1
ln -sfn "$real" "$PREFIX/bin/python${want}" || exit 1
ln -sfn "python${want}" "$PREFIX/bin/python3" || exit 1
ln -sfn "python${want}" "$PREFIX/bin/python" || exit 1
printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' \
    "$(dirname "$real")" "$full" > "$PREFIX/pyvenv.cfg" || exit 1
"""

_PY = ("python >=3.8",)


def package_specs() -> list[PackageSpec]:
    """Every generated package, in a fixed order."""
    specs: list[PackageSpec] = []

    for subdir in ARCH_SUBDIRS:
        osx = subdir.startswith("osx")
        specs.append(
            PackageSpec(
                "python",
                PYTHON_VERSION,
                "0_envctl_host",
                subdir,
                "2023-01-01",
                depends=("__osx >=11.0", "__unix") if osx else ("__glibc >=2.17", "__unix"),
                files={"bin/.python-post-link.sh": _text(PYTHON_POST_LINK, executable=True)},
                license="PSF-2.0",
                summary="Stand-in python: links a host CPython into the prefix at install time",
            )
        )
        for version, date in (("1.0", "2022-06-01"), ("1.2", "2023-06-01")):
            specs.append(
                PackageSpec(
                    "libgamma",
                    version,
                    "0",
                    subdir,
                    date,
                    files={"share/libgamma/VERSION": _text(f"{version}\n")},
                )
            )
        specs.append(
            PackageSpec(
                "libbeta",
                "1.0",
                "0",
                subdir,
                "2022-07-01",
                depends=("libgamma >=1.0",),
                files={"share/libbeta/VERSION": _text("1.0\n")},
            )
        )
        for version, date, deps in (
            ("1.0", "2022-08-01", ("libbeta >=1.0",)),
            ("1.1", "2023-08-01", ("libbeta >=1.0", "libgamma >=1.2")),
        ):
            specs.append(
                PackageSpec(
                    "libalpha",
                    version,
                    "0",
                    subdir,
                    date,
                    depends=deps,
                    files={
                        "bin/libalpha-config": _text(
                            f'#!/bin/sh\necho "{PREFIX_PLACEHOLDER}"\n',
                            executable=True,
                            has_prefix=True,
                        ),
                        "etc/libalpha.conf": _text(
                            f"prefix = {PREFIX_PLACEHOLDER}\nversion = {version}\n",
                            has_prefix=True,
                        ),
                    },
                )
            )
        # Same version twice on linux: the cuda build wins on build number when
        # __cuda is present and is unsatisfiable without it.
        variants = [("cpu", 0, ("libalpha >=1.0",))]
        if not osx:
            variants.append(("cuda", 1, ("__cuda >=11.8", "libalpha >=1.0")))
        for variant, build_number, deps in variants:
            specs.append(
                PackageSpec(
                    "torchlet",
                    "1.0",
                    f"{variant}_{build_number}",
                    subdir,
                    "2024-02-01",
                    build_number=build_number,
                    depends=deps,
                    files={"share/torchlet/VARIANT": _text(f"{variant}\n")},
                )
            )
        glibby = [("1.0", "2022-01-01", ())]
        if not osx:
            glibby.append(("2.0", "2024-01-01", ("__glibc >=2.34",)))
        for version, date, deps in glibby:
            specs.append(
                PackageSpec(
                    "glibby",
                    version,
                    "0",
                    subdir,
                    date,
                    depends=deps,
                    files={"share/glibby/VERSION": _text(f"{version}\n")},
                )
            )

    for version, date in (("1.0", "2023-03-01"), ("1.1", "2024-03-01"), ("2.0", "2025-03-01")):
        specs.append(
            PackageSpec(
                "tinynum",
                version,
                "py_0",
                "noarch",
                date,
                noarch="python",
                depends=_PY,
                files=_module("tinynum", version, "\ndef add(a, b):\n    return a + b\n"),
            )
        )
    for version, date, dep in (
        ("0.9", "2023-06-01", "tinynum >=1.0,<2"),
        ("1.0", "2025-04-01", "tinynum >=2.0"),
    ):
        specs.append(
            PackageSpec(
                "tinyframe",
                version,
                "py_0",
                "noarch",
                date,
                noarch="python",
                depends=(*_PY, dep),
                files=_module(
                    "tinyframe",
                    version,
                    "import tinynum\n\n\ndef frame(*values):\n"
                    '    return {"tinynum": tinynum.__version__, "values": list(values)}\n',
                ),
            )
        )
    specs.append(
        PackageSpec(
            "tinycli",
            "1.0",
            "py_0",
            "noarch",
            "2024-05-01",
            noarch="python",
            depends=(*_PY, "tinyframe"),
            entry_points=("tinycli = tinycli:main",),
            files=_module(
                "tinycli",
                "1.0",
                "import tinyframe\nimport tinynum\n\n\ndef main():\n"
                '    print(f"tinycli {__version__} tinyframe {tinyframe.__version__} '
                'tinynum {tinynum.__version__}")\n',
            ),
        )
    )
    specs.append(
        PackageSpec(
            "tinydata",
            "1.0",
            "0",
            "noarch",
            "2023-05-01",
            noarch="generic",
            files={"share/tinydata/data.txt": _text("tinydata 1.0\n")},
        )
    )
    return specs


# ---------------------------------------------------------------------------
# Command line: python -m envctl.testing.channel DEST [--overwrite]


def main(argv: list[str] | None = None) -> int:
    """Build the channel into DEST and print its ``file://`` URL; 1 with a message on error."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m envctl.testing.channel",
        description="Build envctl's deterministic local conda channel (no network).",
        epilog="example: python -m envctl.testing.channel catalog/.channel --overwrite",
    )
    parser.add_argument("dest", metavar="DEST", type=Path,
                        help="folder for the channel (created; must be empty unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what DEST holds")
    args = parser.parse_args(argv)
    try:
        build_channel(args.dest, overwrite=args.overwrite)
    except FileExistsError:
        print(f"error: {args.dest} is not empty; pass --overwrite to replace it",
              file=sys.stderr)
        return 1
    except (FileNotFoundError, NotADirectoryError) as exc:
        # e.g. a wheel install: the vendored packages live in the source checkout only.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(channel_url(args.dest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
