"""The moto test server: loopback only, a free port, an environment that cannot leak."""

from __future__ import annotations

import os
import socket

import pytest

from envctl.testing.s3server import S3Server, s3_test_env, serve_s3


def test_fixture_server_is_on_loopback(s3_server: S3Server) -> None:
    assert s3_server.host == "127.0.0.1"
    assert s3_server.port > 0
    assert s3_server.endpoint_url == f"http://127.0.0.1:{s3_server.port}"


def test_test_env_keeps_boto3_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    env = s3_test_env("http://127.0.0.1:1234")
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["AWS_PROFILE"] is None  # unset
    assert env["ENVCTL_S3_ENDPOINT_URL"] == "http://127.0.0.1:1234"
    assert env["NO_PROXY"] == "internal.example,127.0.0.1,localhost"


def test_s3_env_fixture_applies_it(s3_env: str) -> None:
    assert os.environ["ENVCTL_S3_ENDPOINT_URL"] == s3_env
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"


def test_stop_is_idempotent_and_final() -> None:
    with serve_s3() as server:
        server.create_bucket("envctl-stop-test")
        server.stop()
        server.stop()
        with pytest.raises(OSError):
            socket.create_connection((server.host, server.port), timeout=2).close()
