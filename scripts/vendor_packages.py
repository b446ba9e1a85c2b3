#!/usr/bin/env python3
"""Re-create the vendored test packages under envctl/testing/data/ (needs PyPI; tests never do).

    .venv/bin/python scripts/vendor_packages.py          # rewrite envctl/testing/data/{conda,pypi}
    .venv/bin/python scripts/vendor_packages.py --check  # rebuild in a temp dir, compare bytes

envctl/testing/data/pypi/  wheels and one sdist, byte-for-byte as PyPI serves them
                  (sha256 checked against the pins below); served by
                  envctl.testing.pypi_index. Their upload times are in the
                  hand-written upload-times.toml beside them (not downloaded,
                  so not rebuilt or compared here); add an entry with a file.
envctl/testing/data/conda/noarch/  the conda-package wheels below, converted with
                  whl2conda to ``noarch: python`` .tar.bz2, then re-packed by
                  envctl.testing.channel.write_tar_bz2 with the build
                  timestamp set to the wheel's release date and fixed archive
                  mtimes/owners. whl2conda's own output carries the time of
                  conversion; after re-packing, the same wheel and whl2conda
                  version give the same bytes, which ``--check`` verifies.

Release dates are real, so ``exclude_newer`` behaves as it would on a
public channel (e.g. a 2023 cutoff picks itsdangerous 2.1.2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envctl.testing.channel import (  # noqa: E402  (needs the repo on sys.path first)
    dumps_json,
    read_tar_bz2,
    write_tar_bz2,
)

# (requirement, file name, sha256 as published on PyPI, release date for the conda build timestamp)
CONDA_WHEELS: list[tuple[str, str, str, str]] = [
    (
        "requests==2.32.3",
        "requests-2.32.3-py3-none-any.whl",
        "70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6",
        "2024-05-29",
    ),
    (
        "urllib3==2.2.3",
        "urllib3-2.2.3-py3-none-any.whl",
        "ca899ca043dcb1bafa3e262d73aa25c465bfb49e0bd9dd5d59f1d0acba2f8fac",
        "2024-09-12",
    ),
    (
        "idna==3.10",
        "idna-3.10-py3-none-any.whl",
        "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3",
        "2024-09-15",
    ),
    (
        "certifi==2024.8.30",
        "certifi-2024.8.30-py3-none-any.whl",
        "922820b53db7a7257ffbda3f597266d435245903d80737e34f8a45ff3e3230d8",
        "2024-08-30",
    ),
    (
        # The pure-Python wheel (py3-none-any), not the compiled ones.
        "charset-normalizer==3.4.0",
        "charset_normalizer-3.4.0-py3-none-any.whl",
        "fe9f97feb71aa9896b81973a7bbada8c49501dc73e58a10fcef6663af95e5079",
        "2024-10-09",
    ),
    (
        "six==1.16.0",
        "six-1.16.0-py2.py3-none-any.whl",
        "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
        "2021-05-05",
    ),
    (
        "itsdangerous==2.1.2",
        "itsdangerous-2.1.2-py3-none-any.whl",
        "2c2349112351b88699d8d4b6b075022c0808887cb7ad10069318a8b0bc88db44",
        "2022-03-24",
    ),
    (
        "itsdangerous==2.2.0",
        "itsdangerous-2.2.0-py3-none-any.whl",
        "c6242fc49e35958c8b15141343aa660db5fc54d4f13a1db01a3f5891b98700ef",
        "2024-04-16",
    ),
]

# (requirement, file name, sha256): files served by the local PyPI index.
# importlib-metadata depends on zipp (a dependency to resolve); the itsdangerous
# sdist builds with flit_core, which the index also serves, so an isolated
# `pip download --no-binary` works offline.
PYPI_FILES: list[tuple[str, str, str]] = [
    (
        "itsdangerous==2.1.2",
        "itsdangerous-2.1.2-py3-none-any.whl",
        "2c2349112351b88699d8d4b6b075022c0808887cb7ad10069318a8b0bc88db44",
    ),
    (
        "itsdangerous==2.2.0",
        "itsdangerous-2.2.0-py3-none-any.whl",
        "c6242fc49e35958c8b15141343aa660db5fc54d4f13a1db01a3f5891b98700ef",
    ),
    (
        "itsdangerous==2.2.0",
        "itsdangerous-2.2.0.tar.gz",
        "e0050c0b7da1eea53ffaf149c0cfbb5c6e2e2b69c4bef22c81fa6eb73e5f6173",
    ),
    (
        "six==1.17.0",
        "six-1.17.0-py2.py3-none-any.whl",
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
    ),
    (
        "importlib-metadata==8.5.0",
        "importlib_metadata-8.5.0-py3-none-any.whl",
        "45e54197d28b7a7f1559e60b95e7c567032b602131fbd588f1497f47880aa68b",
    ),
    (
        "zipp==3.20.2",
        "zipp-3.20.2-py3-none-any.whl",
        "a817ac80d6cf4b23bf7f2828b7cabf326f15a001bea8b1f9b49631780ba28350",
    ),
    (
        "flit-core==3.9.0",
        "flit_core-3.9.0-py3-none-any.whl",
        "7aada352fb0c7f5538c4fafeddf314d3a6a92ee8e2b1de70482329e42de70301",
    ),
]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(requirement: str, filename: str, sha256: str, dest: Path) -> Path:
    """Fetch one file with pip (one requirement per call: several versions of a name coexist)."""
    target = dest / filename
    if not target.exists():
        sdist = filename.endswith((".tar.gz", ".zip"))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest)]
        cmd += (
            ["--no-binary=:all:"]
            if sdist
            else [
                "--only-binary=:all:",
                "--python-version=3.11",
                # Only pure-Python wheels, whatever this machine is.
                "--platform=any",
                "--implementation=py",
            ]
        )
        subprocess.run([*cmd, requirement], check=True)
    if not target.exists():
        raise SystemExit(f"pip did not produce {filename} for {requirement}")
    got = sha256_of(target)
    if got != sha256:
        raise SystemExit(f"{filename}: sha256 {got}, expected {sha256}")
    return target


def convert(wheel: Path, date: str, work: Path) -> tuple[str, bytes]:
    """whl2conda-convert a wheel, then re-pack it deterministically."""
    out = work / "converted"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "whl2conda", "convert", str(wheel), "--out-dir", str(out)]
    cmd += ["--format", "V1", "--batch", "--yes", "--overwrite", "--quiet"]
    subprocess.run(cmd, check=True)
    stem = wheel.name.split("-")[0].replace("_", "-").lower()
    version = wheel.name.split("-")[1]
    (converted,) = out.glob(f"{stem}-{version}-*.tar.bz2")
    members = read_tar_bz2(converted.read_bytes())
    converted.unlink()

    epoch = int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    index = json.loads(members["info/index.json"][0])
    if index.get("noarch") != "python":
        raise SystemExit(f"{wheel.name}: converted package is not noarch: python")
    index["timestamp"] = epoch * 1000
    members["info/index.json"] = (dumps_json(index), 0o644)
    normalised = {
        name: (data, 0o755 if mode & 0o111 else 0o644) for name, (data, mode) in members.items()
    }
    return converted.name, write_tar_bz2(normalised, epoch)


def build(data_dir: Path, downloads: Path, work: Path) -> None:
    pypi = data_dir / "pypi"
    conda = data_dir / "conda" / "noarch"
    pypi.mkdir(parents=True, exist_ok=True)
    conda.mkdir(parents=True, exist_ok=True)
    for requirement, filename, sha256 in PYPI_FILES:
        path = download(requirement, filename, sha256, downloads)
        (pypi / filename).write_bytes(path.read_bytes())
    for requirement, filename, sha256, date in CONDA_WHEELS:
        wheel = download(requirement, filename, sha256, downloads)
        name, data = convert(wheel, date, work)
        (conda / name).write_bytes(data)
        print(f"{name}  {hashlib.sha256(data).hexdigest()}")


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for sub in ("pypi", "conda")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file() and p.name != "upload-times.toml"  # hand-written, see above
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "envctl" / "testing" / "data")
    parser.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare")
    parser.add_argument("--downloads", type=Path, help="reuse/keep downloaded files here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        downloads = args.downloads or tmp_path / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        target = tmp_path / "data" if args.check else args.data_dir
        build(target, downloads, tmp_path)
        if args.check:
            want, got = tree(args.data_dir), tree(target)
            diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
            if diff:
                print("differs:", *diff, sep="\n  ")
                return 1
            print(f"identical: {len(want)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
