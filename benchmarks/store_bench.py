"""Store upload timings: first upload, idempotent rerun, and a full verified read-back.

    .venv/bin/python benchmarks/store_bench.py [--files 200] [--size-kib 256] [--workers 8]

Runs on the local store and on S3 (a moto server on 127.0.0.1), and prints each
time with the ratio to a plain sequential ``shutil.copyfile`` of the same files
(the baseline: what any store costs at least on this disk). Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from envctl.store import Store, open_store, package_key
from envctl.store.upload import PackageFile, upload_packages
from envctl.testing.s3server import s3_test_env, serve_s3


def make_files(folder: Path, count: int, size: int) -> list[PackageFile]:
    folder.mkdir(parents=True)
    items = []
    for i in range(count):
        # Distinct, incompressible-enough content without os.urandom (reproducible).
        seed = hashlib.sha256(str(i).encode()).digest()
        data = (seed * (size // len(seed) + 1))[:size]
        path = folder / f"pkg{i:04d}-1.0-0.conda"
        path.write_bytes(data)
        items.append(PackageFile(path, hashlib.sha256(data).hexdigest(), path.name))
    return items


def timed(label: str, baseline: float, fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"  {label:<28} {elapsed:7.3f} s   {elapsed / baseline:6.1f}x baseline")
    return elapsed


def bench(name: str, store: Store, items: list[PackageFile], workers: int, base: float) -> None:
    print(f"{name}: {store.url}")

    def read_back() -> None:
        for item in items:
            store.get_bytes(package_key(item.sha256, item.filename))

    timed("upload (empty store)", base, lambda: upload_packages(store, items, workers=workers))
    timed("rerun (all skipped)", base, lambda: upload_packages(store, items, workers=workers))
    timed("read back, verified", base, read_back)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        items = make_files(root / "src", args.files, args.size_kib * 1024)
        total = args.files * args.size_kib / 1024
        print(f"{args.files} files, {total:.1f} MiB, {args.workers} workers")

        (root / "copy").mkdir()
        start = time.perf_counter()
        for item in items:
            shutil.copyfile(item.path, root / "copy" / item.filename)
        base = time.perf_counter() - start
        print(f"baseline: sequential copy {base:.3f} s")

        bench("local", open_store(str(root / "store")), items, args.workers, base)
        with serve_s3() as server:
            for key, value in s3_test_env(server.endpoint_url).items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            store = open_store(f"s3://{server.create_bucket()}/bench")
            bench("s3 (moto, loopback)", store, items, args.workers, base)


if __name__ == "__main__":
    main()
