"""The benchmark catalogs are what CI would have written: a generated catalog lints clean
(its metas record the requests the resolver normalises, rolling tags without a cut-off),
and every meta's bytes are exactly ``dump_meta``'s, so benchmarks time the format envctl
writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from envctl.catalog import open_catalog
from envctl.lint import lint_catalog
from envctl.meta import dump_meta, fast_json, load_meta

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def gen_catalog() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_catalog", BENCHMARKS / "gen_catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_catalog"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(gen_catalog: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "cat"
    gen_catalog.generate(out, 40, commits=20)
    return out


def test_a_generated_catalog_lints_clean(generated: Path) -> None:
    report = lint_catalog(open_catalog(str(generated)))
    assert report.ok, [f.render() for f in report.findings[:5]]
    assert report.environments == 40


def test_generated_metas_are_the_bytes_ci_writes(generated: Path) -> None:
    metas = sorted((generated / "locks").rglob("*.meta.yaml"))
    assert len(metas) > 40
    for path in metas:
        data = path.read_bytes()
        assert fast_json(data) is not None, path
        assert dump_meta(load_meta(data, file=str(path))) == data, path
