"""The S3 backend (``s3://bucket/prefix``), for AWS S3 and S3-compatible servers.

boto3 is imported on first use, not with this module, so the CLI starts fast.

- Endpoint: ``ENVCTL_S3_ENDPOINT_URL``, else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
  else AWS. Credentials and region: boto3's usual chain (environment, profile, ...).
- Write-once: ``PutObject``/``CompleteMultipartUpload`` with ``If-None-Match: *``, so
  of two concurrent writers exactly one creates the key (S3 has supported this
  since 2024; moto too). For a server without conditional writes set
  ``ENVCTL_S3_CONDITIONAL_WRITES=0``: envctl then does head-then-put, where two
  writers racing on one key can both write. For content-addressed keys both write
  the same bytes, so only records could be affected, and CI runs are serialised by
  their concurrency group.
- Integrity: every upload carries its SHA-256 (``ChecksumSHA256``), which S3
  verifies before storing, plus ``x-amz-meta-sha256``; after the upload a HEAD checks
  the size and checksum. Large files go up in parts, each with its own checksum.
- Every botocore failure becomes a StoreError that names the key and says what to
  do; a stopped or unreachable endpoint fails fast (few retries, short timeouts).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.errors import StoreError
from envctl.store.base import (
    CHUNK_SIZE,
    MissingObjectError,
    ObjectInfo,
    ObjectStat,
    Source,
    Store,
    is_sha256,
)

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

ENDPOINT_ENV_VARS = ("ENVCTL_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CONDITIONAL_WRITES_ENV = "ENVCTL_S3_CONDITIONAL_WRITES"
SHA256_METADATA = "sha256"

#: Above this, a file goes up in parts (a single PUT is limited to 5 GiB, and a part
#: that fails is retried alone).
MULTIPART_THRESHOLD = 256 * 1024 * 1024
PART_SIZE = 64 * 1024 * 1024

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION_FAILED = {"412", "PreconditionFailed"}
_CONFLICT = {"409", "ConditionalRequestConflict"}


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def boto3_session() -> Any:
    """A new boto3 session that shares one botocore data loader per process.

    Each session still reads credentials, region and config from the environment
    when it is made; only the service models are shared: they are static JSON, and
    parsing them again costs about 0.1 s per client.
    """
    import boto3
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core)


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


def _hex_from_b64(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in {"0", "false", "no", "off"}


class S3Store(Store):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        conditional_writes: bool | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or next(
            (os.environ[v] for v in ENDPOINT_ENV_VARS if os.environ.get(v)), None
        )
        self.conditional_writes = (
            _env_flag(CONDITIONAL_WRITES_ENV, True)
            if conditional_writes is None
            else conditional_writes
        )
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_attempts = max_attempts
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client
        self._client_lock = threading.Lock()

    # boto3 clients are thread-safe (sessions are not): one client, made once, serves
    # every upload thread.
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        from botocore.config import Config

        config = Config(
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
            # A custom endpoint (moto, MinIO, an IP) rarely resolves bucket subdomains.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
        )
        with self._errors("connect to", ""):
            return boto3_session().client("s3", endpoint_url=self.endpoint_url, config=config)

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}" if key else self.url

    # -- reads ------------------------------------------------------------------------

    def _stat(self, key: str) -> ObjectStat | None:
        from botocore.exceptions import ClientError

        with self._errors("check", key):
            try:
                head = self.client.head_object(
                    Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED"
                )
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    return None
                raise
        return ObjectStat(size=int(head["ContentLength"]), sha256=self._recorded_sha256(head))

    @staticmethod
    def _recorded_sha256(head: dict[str, Any]) -> str | None:
        """The sha256 S3 holds for the object: its full-object checksum, else our metadata.

        A multipart object's checksum is a checksum of part checksums (``...-N``), not
        the file's; for those the metadata written with the upload is what we have.
        """
        checksum = head.get("ChecksumSHA256")
        # A multipart ETag ends in "-<parts>"; moto omits the marks on the checksum itself.
        multipart = (
            "-" in str(head.get("ETag", ""))
            or "-" in (checksum or "")
            or head.get("ChecksumType") == "COMPOSITE"
        )
        if checksum and not multipart:
            return _hex_from_b64(checksum)
        recorded = (head.get("Metadata") or {}).get(SHA256_METADATA)
        return recorded if is_sha256(recorded) else None

    def _read_chunks(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        with self._errors("read", key):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise MissingObjectError(
                        f"{key} is not in the store",
                        file=self.describe(key),
                        fix="upload it first (envctl ci run), or check the store URL",
                    ) from None
                raise
            body = response["Body"]
            try:
                yield from body.iter_chunks(CHUNK_SIZE)
            finally:
                body.close()

    def _list(self, prefix: str) -> Iterator[str]:
        for info in self._list_info(prefix):
            yield info.key

    def _list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        # ListObjectsV2 returns keys in UTF-8 binary order, sizes and LastModified for
        # free: gc learns every object's age without a HEAD per key.
        full = self._full(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors("list", prefix or "/"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"][strip:],
                        size=int(item["Size"]),
                        modified=item["LastModified"].timestamp(),
                    )

    def _delete(self, key: str) -> None:
        # DeleteObject of a missing key succeeds (204), which is the contract.
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    # -- writes -----------------------------------------------------------------------

    def _create(self, key: str, src: Source, sha256: str, size: int) -> bool:
        from botocore.exceptions import ClientError

        if not self.conditional_writes:
            # head-then-put: racy between concurrent writers (see the module docstring).
            if self._stat(key) is not None:
                return False
            self._upload(key, src, sha256, size, if_none_match=False)
            return True
        for attempt in range(4):
            try:
                with self._errors("upload", key, passthrough=ClientError):
                    self._upload(key, src, sha256, size, if_none_match=True)
                return True
            except ClientError as exc:
                code = _error_code(exc)
                if code in _PRECONDITION_FAILED:
                    return False  # it exists: the caller verifies what is there
                if code in _CONFLICT and attempt < 3:
                    # Another conditional write of this key is in flight; once it
                    # lands our retry gets 412 and the caller verifies its bytes.
                    time.sleep(0.2 * (attempt + 1))
                    continue
                if code in {"501", "NotImplemented"}:
                    raise StoreError(
                        f"the S3 server refused a conditional write of {key}",
                        file=self.describe(key),
                        rule="store-unsupported",
                        fix=f"this server lacks If-None-Match; set {CONDITIONAL_WRITES_ENV}=0",
                    ) from None
                raise self._client_error("upload", key, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, key: str, src: Source, sha256: str, size: int) -> None:
        with self._errors("upload", key):
            self._upload(key, src, sha256, size, if_none_match=False)

    def _upload(
        self, key: str, src: Source, sha256: str, size: int, *, if_none_match: bool
    ) -> None:
        condition = {"IfNoneMatch": "*"} if if_none_match else {}
        if not isinstance(src, bytes) and size > self.multipart_threshold:
            self._upload_parts(key, src, sha256, condition)
        else:
            common = {
                "Bucket": self.bucket,
                "Key": self._full(key),
                "ChecksumAlgorithm": "SHA256",
                "ChecksumSHA256": _b64(sha256),
                "Metadata": {SHA256_METADATA: sha256},
                **condition,
            }
            if isinstance(src, bytes):
                self.client.put_object(Body=src, **common)
            else:
                with open(src, "rb") as body:
                    self.client.put_object(Body=body, **common)
        self._verify_upload(key, sha256, size)

    def _upload_parts(self, key: str, path: Path, sha256: str, condition: dict[str, str]) -> None:
        full = self._full(key)
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=full,
            ChecksumAlgorithm="SHA256",
            Metadata={SHA256_METADATA: sha256},
        )
        upload_id = upload["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(self.part_size):
                    digest.update(chunk)
                    part_checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                    number = len(parts) + 1
                    response = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=part_checksum,
                    )
                    parts.append(
                        {
                            "ETag": response["ETag"],
                            "PartNumber": number,
                            "ChecksumSHA256": part_checksum,
                        }
                    )
            if digest.hexdigest() != sha256:
                # The file changed after it was checked; S3 only saw the parts' checksums.
                raise StoreError(
                    f"{path} changed while it was being stored as {key}",
                    file=self.describe(key),
                    rule="sha256-mismatch",
                    fix="make sure nothing else writes the file, then rerun",
                )
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            # Best effort: an abandoned upload only costs storage until it is aborted.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise

    def _verify_upload(self, key: str, sha256: str, size: int) -> None:
        stat = self._stat(key)
        if stat is None or stat.size != size or stat.sha256 not in (None, sha256):
            found = "nothing" if stat is None else f"{stat.size} bytes, sha256 {stat.sha256}"
            raise StoreError(
                f"upload of {key} did not verify: expected {size} bytes, sha256 {sha256}; "
                f"found {found}",
                file=self.describe(key),
                rule="upload-unverified",
                fix="rerun: envctl replaces objects that fail verification",
            )

    # -- errors -----------------------------------------------------------------------

    @contextmanager
    def _errors(
        self, action: str, key: str, *, passthrough: type[BaseException] | None = None
    ) -> Iterator[None]:
        """Turn botocore/urllib3 failures into StoreErrors naming the key and the fix."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            yield
        except StoreError:
            raise
        except ClientError as exc:
            if passthrough is not None and isinstance(exc, passthrough):
                raise
            raise self._client_error(action, key, exc) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise StoreError(
                f"no AWS credentials to {action} {self.describe(key)}",
                file=self.describe(key),
                rule="store-auth",
                fix="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
            ) from None
        except (ConnectionError, HTTPClientError, Urllib3Error) as exc:
            raise StoreError(
                f"cannot reach the store to {action} {key or self.url}: {exc}",
                file=self.describe(key),
                rule="store-unreachable",
                fix=(
                    f"check the endpoint ({self.endpoint_url or 'AWS'}; ENVCTL_S3_ENDPOINT_URL) "
                    "and the network, then rerun: uploads resume where they stopped"
                ),
            ) from None
        except BotoCoreError as exc:
            raise StoreError(
                f"cannot {action} {key or self.url}: {exc}",
                file=self.describe(key),
                rule="store-io",
                fix="rerun; if it persists, check the store settings in catalog.yaml",
            ) from None

    def _client_error(self, action: str, key: str, exc: ClientError) -> StoreError:
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {self.bucket!r} does not exist (while trying to {action} {key})",
                file=self.describe(key),
                rule="store-config",
                fix="create the bucket, or fix store: in catalog.yaml",
            )
        if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return StoreError(
                f"access denied to {action} {key or self.url} ({code})",
                file=self.describe(key),
                rule="store-auth",
                fix="check the AWS credentials and the bucket policy",
            )
        return StoreError(
            f"cannot {action} {key or self.url}: {code} {message}",
            file=self.describe(key),
            rule="store-io",
            fix="rerun; if it persists, check the store settings in catalog.yaml",
        )
