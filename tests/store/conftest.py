"""One behaviour suite, two backends: every test that takes ``backend`` or ``store``
runs against a local directory and against S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.store import Store
from envctl.testing.storekit import Backend, local_backend, s3_backend

S3_PLUGIN = "envctl.testing.s3_plugin"


def pytest_configure(config: pytest.Config) -> None:
    # Until tests/conftest.py lists the plugin, load it here (a non-root conftest may
    # not set pytest_plugins); once it is listed this does nothing.
    if not config.pluginmanager.has_plugin(S3_PLUGIN):
        config.pluginmanager.import_plugin(S3_PLUGIN)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path / "store")
    return s3_backend(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_store"))


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store
