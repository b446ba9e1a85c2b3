"""pytest fixtures for S3-backed stores, on a moto server bound to 127.0.0.1.

Register with ``pytest_plugins = [..., "envctl.testing.s3_plugin"]`` in the
top-level conftest.

Fixtures:

- ``s3_server`` (session): the running :class:`~envctl.testing.s3server.S3Server`.
  Do not stop it: a test that needs a failing store starts its own with
  ``serve_s3()`` (moto's state is per process, so its buckets are shared).
- ``s3_env`` (function): sets :func:`~envctl.testing.s3server.s3_test_env` for the
  test (dummy credentials, us-east-1, no metadata service, endpoint = the server),
  so ``open_store("s3://...")`` and subprocesses reach only the moto server.
  Returns the endpoint URL.
- ``s3_url`` (function): ``s3://<fresh bucket>/store``, with ``s3_env`` applied.
- ``s3_store`` (function): an :class:`~envctl.store.S3Store` on ``s3_url``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from envctl.store import S3Store, open_store
from envctl.testing.s3server import S3Server, s3_test_env, serve_s3


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with serve_s3() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in s3_test_env(s3_server.endpoint_url).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return s3_server.endpoint_url


@pytest.fixture
def s3_url(s3_server: S3Server, s3_env: str) -> str:
    return f"s3://{s3_server.create_bucket()}/store"


@pytest.fixture
def s3_store(s3_url: str) -> S3Store:
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    return store
