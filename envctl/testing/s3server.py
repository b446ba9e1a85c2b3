"""An S3 server for tests: moto's, in this process, on 127.0.0.1 and a free port.

``serve_s3()`` yields an :class:`S3Server`; ``server.stop()`` stops it early (to
test a store that fails mid-upload), and it stops on exit anyway.
``s3_test_env(endpoint)`` is the environment that makes boto3 talk only to it:
dummy credentials, a fixed region, no instance-metadata lookups, no AWS config
files, no proxy for loopback. Nothing here reaches beyond 127.0.0.1.

moto keeps its state per process, so servers in one process share buckets: give
every test its own bucket (``create_bucket()`` picks a fresh name).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TEST_ACCESS_KEY = "envctl-test-key"
TEST_SECRET_KEY = "envctl-test-secret"
TEST_REGION = "us-east-1"

#: Variables that could send boto3 elsewhere or make it look for real credentials.
_AWS_LEAKS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "ENVCTL_S3_CONDITIONAL_WRITES",
)


def s3_test_env(endpoint_url: str) -> dict[str, str | None]:
    """Variables to set (``None``: to unset) so boto3 uses only the test server."""
    no_proxy = ",".join(
        filter(
            None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1,localhost"]
        )
    )
    env: dict[str, str | None] = {name: None for name in _AWS_LEAKS}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_DEFAULT_REGION": TEST_REGION,
            "AWS_REGION": TEST_REGION,
            # Never ask 169.254.169.254 for credentials or a region.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "ENVCTL_S3_ENDPOINT_URL": endpoint_url,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env


@dataclass
class S3Server:
    host: str
    port: int
    _server: Any = field(repr=False)
    _stopped: bool = field(default=False, repr=False)
    _client: Any = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self) -> Any:
        """A boto3 S3 client for this server, configured without reading the environment.

        Made once and shared: boto3 clients are thread-safe.
        """
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        from botocore.config import Config

        from envctl.store.s3 import boto3_session

        return boto3_session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            region_name=TEST_REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default) and return its name."""
        name = name or f"envctl-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop serving; later requests fail to connect. Idempotent."""
        if not self._stopped:
            self._stopped = True
            self._server.stop()


@contextmanager
def serve_s3(host: str = "127.0.0.1") -> Iterator[S3Server]:
    """Run moto's S3 on ``host`` and a port the OS picks; yields the running server."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request to stderr; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    moto.start()
    bound_host, port = moto.get_host_and_port()
    server = S3Server(host=bound_host, port=port, _server=moto)
    try:
        yield server
    finally:
        server.stop()
