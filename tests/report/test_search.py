"""``envctl search``: by text and by a package the locks contain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.catalog import Catalog, WorkTreeSource
from envctl.errors import EnvctlError
from envctl.report.search import PackageQuery, parse_package_query, search

from .conftest import ReportRepo


def invoke(*args: str) -> tuple[int, str]:
    from envctl.cli.main import app

    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("text", "want"), [
    ("openssl", PackageQuery("openssl")),
    ("openssl=3.0.7", PackageQuery("openssl", "3.0.7")),
    ("openssl==3.0.7", PackageQuery("openssl", "3.0.7")),
    ("openssl 3.0.7", PackageQuery("openssl", "3.0.7")),
    ("torchlet=1.0=cuda*", PackageQuery("torchlet", "1.0", "cuda*")),
])
def test_parse_package_query(text: str, want: PackageQuery) -> None:
    assert parse_package_query(text) == want


@pytest.mark.parametrize("text", ["", "=1.0", "a=1=2=3", "a="])
def test_bad_package_query(text: str) -> None:
    with pytest.raises(EnvctlError, match="is not a package query"):
        parse_package_query(text)


def found(catalog: Catalog, text: str | None = None,
          package: str | None = None) -> dict[str, list[str]]:
    hits = search(catalog, text, parse_package_query(package) if package else None)
    return {h.name: [t.tag for t in h.tags] for h in hits}


@pytest.mark.slow
def test_search_by_package(report_repo: ReportRepo) -> None:
    catalog = Catalog(WorkTreeSource(report_repo.root))
    assert found(catalog, package="tinydata") == {"team/app": ["v2", "v4"]}
    assert found(catalog, package="tinynum=1.0") == {"team/app": ["v1", "v3", "v4"]}
    assert found(catalog, package="tinynum=1.*") == {"team/app": ["v1", "v2", "v3", "v4"]}
    assert found(catalog, package="torchlet=1.0=cuda*") == {"team/app": ["v2", "v3", "v4"]}
    # PyPI names match normalised; the version exactly.
    assert found(catalog, package="ItsDangerous==2.1.2") == {"team/app": ["v1"]}
    assert found(catalog, package="openssl=3.0.7") == {}
    # Text and package together: both must match.
    assert found(catalog, "gpu", package="torchlet") == {}
    assert found(catalog, "report", package="tinydata") == {"team/app": ["v2", "v4"]}

    [hit] = search(catalog, None, parse_package_query("torchlet=1.0=cuda*"))
    v3 = next(t for t in hit.tags if t.tag == "v3")
    assert v3.aliases == ["stable"]
    [package] = v3.packages
    assert (package.manager, package.version, package.build, package.platforms) == (
        "conda", "1.0", "cuda_1", ["linux-64"])  # the cuda build exists on linux only


@pytest.mark.slow
def test_search_by_text(report_repo: ReportRepo) -> None:
    catalog = Catalog(WorkTreeSource(report_repo.root))
    assert list(found(catalog, "GPU")) == ["vision/train"]  # description, any case
    assert list(found(catalog, "team")) == ["team/app"]  # name and owner
    assert list(found(catalog, "vision/")) == ["vision/train"]
    [hit] = search(catalog, "vision")
    assert hit.matched == ["name", "description", "owner"]
    assert found(catalog, "nothing-like-this") == {}


@pytest.mark.slow
def test_cli_search(in_catalog: Path) -> None:
    code, out = invoke("search", "--package", "itsdangerous=2.2.0", "--json")
    assert code == 0
    data = json.loads(out)
    assert [h["name"] for h in data] == ["team/app"]
    assert list(data[0]) == ["name", "description", "owners", "matched", "tags"]
    assert data[0]["matched"] == ["package"]
    assert [t["tag"] for t in data[0]["tags"]] == ["v2", "v3", "v4"]
    assert data[0]["tags"][0]["packages"] == [{
        "manager": "pypi", "name": "itsdangerous", "version": "2.2.0", "build": None,
        "platforms": ["linux-64", "osx-arm64"]}]
    code, out = invoke("search", "--package", "torchlet=1.0=cuda*")
    assert code == 0
    assert "team/app" in out and "torchlet 1.0 cuda_1 [conda]" in out
    assert "v3 (stable)" in out
    code, out = invoke("search", "gpu")
    assert code == 0 and "vision/train" in out and "team/app" not in out
    code, out = invoke("search", "--package", "openssl=3.0.7")
    assert code == 0 and out.strip() == "no environment matches package openssl=3.0.7"
    code, out = invoke("search")
    assert code == 1 and "nothing to search for" in out
    # The first commit declared the tags; their locks came in the next one.
    code, out = invoke("search", "--package", "tinydata", "--rev", "HEAD~4", "--json")
    assert code == 0 and json.loads(out) == []
    code, out = invoke("search", "--package", "tinydata", "--rev", "HEAD~3", "--json")
    assert [t["tag"] for t in json.loads(out)[0]["tags"]] == ["v2", "v4"]
