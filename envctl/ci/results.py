"""What a CI job produced, per tag, and the results folder that carries it between jobs.

Fan-out: each matrix job (``envctl ci run --only ... --no-commit --results DIR``)
resolves and uploads a subset and writes ``DIR``; the final job (``envctl ci commit
--results DIR...``) reads them all and makes the single commit. A results folder::

    DIR/ci-result.json                      the run: plan head, store, outcomes, errors
    DIR/files/locks/<env>/<tag>.conda-lock.yml
    DIR/files/locks/<env>/<tag>.meta.yaml   the bytes to commit, as resolved

The JSON is versioned; an unknown version is refused rather than guessed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from envctl.errors import EnvctlError

if TYPE_CHECKING:
    from envctl.meta import Meta

RESULT_FILE = "ci-result.json"
FILES_DIR = "files"
RESULT_VERSION = "1"

Status = Literal[
    "resolved",  # new lock and meta, uploaded and verified: to be committed
    "unchanged",  # a rolling tag that resolves to the same packages
    "frozen",  # already locked at the commit's parent
    "skipped",  # retired, or not a tag CI resolves
    "failed",  # did not resolve, or its upload failed; stays pending
]


@dataclass(frozen=True)
class PlatformIds:
    platform: str
    req_id: str
    full_id: str

    @property
    def env_id(self) -> str:
        return f"{self.req_id}:{self.full_id}"

    def to_dict(self) -> dict[str, str]:
        return {"platform": self.platform, "req_id": self.req_id, "full_id": self.full_id,
                "id": self.env_id}


@dataclass(frozen=True)
class TagOutcome:
    alias: str
    status: Status
    message: str
    mutable: bool = False
    platforms: tuple[PlatformIds, ...] = ()
    resolved_by: str | None = None  # the author of the commit that added the tag
    added_in: str | None = None  # that commit
    lock_sha256: str | None = None
    uploaded: int = 0  # package files sent to the store by this job
    skipped: int = 0  # package files the store already had
    bytes: int = 0
    error: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "status": self.status,
            "message": self.message,
            "mutable": self.mutable,
            "platforms": [p.to_dict() for p in self.platforms],
            "resolved_by": self.resolved_by,
            "added_in": self.added_in,
            "lock_sha256": self.lock_sha256,
            "uploaded": self.uploaded,
            "skipped": self.skipped,
            "bytes": self.bytes,
            "error": self.error,
            "files": sorted(self.files),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], files: dict[str, bytes]) -> TagOutcome:
        return cls(
            alias=data["alias"],
            status=data["status"],
            message=data.get("message", ""),
            mutable=bool(data.get("mutable", False)),
            platforms=tuple(
                PlatformIds(p["platform"], p["req_id"], p["full_id"])
                for p in data.get("platforms", [])
            ),
            resolved_by=data.get("resolved_by"),
            added_in=data.get("added_in"),
            lock_sha256=data.get("lock_sha256"),
            uploaded=int(data.get("uploaded", 0)),
            skipped=int(data.get("skipped", 0)),
            bytes=int(data.get("bytes", 0)),
            error=data.get("error"),
            files=files,
        )

    def lock_bytes(self) -> bytes:
        from envctl.names import parse_alias

        return self.files[str(parse_alias(self.alias).lock_path)]

    def meta(self) -> Meta:
        """The meta this outcome commits (parsed from its bytes, not from any work tree)."""
        from envctl.meta import load_meta
        from envctl.names import parse_alias

        rel = str(parse_alias(self.alias).meta_path)
        return load_meta(self.files[rel], file=rel)

    def failed(self, exc: EnvctlError, message: str | None = None) -> TagOutcome:
        return replace(self, status="failed", message=message or exc.render(),
                       error=exc.to_dict(), files={})


def failure(alias: str, exc: EnvctlError, *, mutable: bool = False) -> TagOutcome:
    return TagOutcome(alias, "failed", exc.render(), mutable=mutable, error=exc.to_dict())


@dataclass(frozen=True)
class JobResult:
    """One job's results: enough for ``envctl ci commit`` to make the commit elsewhere."""

    head: str  # the commit the job planned and resolved at
    store: str
    outcomes: tuple[TagOutcome, ...]
    deferred: tuple[str, ...] = ()  # planned but left to other jobs or later runs
    errors: tuple[dict[str, Any], ...] = ()  # job-level failures (store down...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RESULT_VERSION,
            "head": self.head,
            "store": self.store,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "deferred": list(self.deferred),
            "errors": list(self.errors),
        }


def _safe_rel(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not rel.startswith("locks/"):
        raise EnvctlError(
            f"results name {rel!r}, which is not a lock file path",
            rule="invalid-results",
            fix="pass folders written by 'envctl ci run --results'",
        )
    return path


def write_results(folder: Path, result: JobResult) -> Path:
    """Write ``result`` into ``folder`` (created; an earlier result there is replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = folder / FILES_DIR
    for outcome in result.outcomes:
        for rel, data in outcome.files.items():
            path = files / _safe_rel(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    text = json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"
    (folder / RESULT_FILE).write_text(text, encoding="utf-8")
    return folder / RESULT_FILE


def read_results(folder: Path) -> JobResult:
    path = folder / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnvctlError(
            f"no {RESULT_FILE} in {folder}",
            file=str(folder),
            rule="invalid-results",
            fix="pass folders written by 'envctl ci run --results DIR'",
        ) from None
    except (OSError, ValueError) as exc:
        raise EnvctlError(f"cannot read {path}: {exc}", file=str(path),
                          rule="invalid-results") from None
    if not isinstance(data, dict) or data.get("version") != RESULT_VERSION:
        raise EnvctlError(
            f"{path} has results version {data.get('version') if isinstance(data, dict) else '?'}"
            f", this envctl reads {RESULT_VERSION}",
            file=str(path),
            rule="invalid-results",
            fix="run 'envctl ci run' and 'envctl ci commit' with the same envctl version",
        )
    outcomes = []
    for item in data.get("outcomes", []):
        files = {}
        for rel in item.get("files", []):
            file = folder / FILES_DIR / _safe_rel(rel)
            try:
                files[rel] = file.read_bytes()
            except OSError:
                raise EnvctlError(f"{file} is missing", file=str(file), rule="invalid-results",
                                  fix="upload the whole results folder") from None
        outcomes.append(TagOutcome.from_dict(item, files))
    return JobResult(
        head=data["head"],
        store=data.get("store", ""),
        outcomes=tuple(outcomes),
        deferred=tuple(data.get("deferred", [])),
        errors=tuple(data.get("errors", [])),
    )
