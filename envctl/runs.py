"""Which environment a run's step used: ``Flow/run/step`` -> alias and ``req_id:full_id``.

``@named_env`` records it when a step runs, so ``envctl create --pathspec`` and
``envctl info --pathspec`` reproduce the exact environment later (Metaflow's
"pathspecs are automatically treated as aliases").

Two places, both keyed ``runs/<Flow>/<run>/<step>.json``:

- the local registry under ``$ENVCTL_HOME`` (always written);
- the artifact store when one is configured, so another machine finds it. Store
  objects are write-once: a retried task that used the same environment is a no-op;
  a different environment for the same step of the same run is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.errors import EnvctlError, InvalidNameError, NotFoundError, StoreError
from envctl.fsutil import atomic_write
from envctl.models import Hex40, StrictModel, dump_json, validate

if TYPE_CHECKING:
    from envctl.store.base import Store

RUNS_DIR = "runs"
RUN_RECORD_VERSION = "1"

# Metaflow flow and step names are identifiers; run ids are numbers or scheduler ids
# (argo-..., sfn-...). One rule that is also a safe store-key segment.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Pathspec:
    flow: str
    run: str
    step: str

    def __str__(self) -> str:
        return f"{self.flow}/{self.run}/{self.step}"

    @property
    def key(self) -> str:
        return f"{RUNS_DIR}/{self.flow}/{self.run}/{self.step}.json"


def parse_pathspec(text: str) -> Pathspec:
    """``Flow/run/step`` (a trailing ``/task`` is accepted and ignored)."""
    parts = text.strip().strip("/").split("/") if isinstance(text, str) else []
    if len(parts) == 4:
        parts = parts[:3]  # a task pathspec: every task of a step uses the step's env
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise InvalidNameError(
            f"{text!r} is not a run pathspec",
            rule="invalid-pathspec",
            fix="write it as Flow/run/step, e.g. TrainingFlow/456/train",
        )
    return Pathspec(*parts)


class RunRecord(StrictModel):
    version: str = RUN_RECORD_VERSION
    pathspec: str
    asked: str | None = None
    alias: str | None = None
    req_id: Hex40
    full_id: Hex40
    platform: str
    lock_sha256: str | None = None
    recorded_at: str | None = None

    @property
    def env_id(self) -> str:
        return f"{self.req_id}:{self.full_id}"

    def same_environment(self, other: RunRecord) -> bool:
        return (self.req_id, self.full_id, self.platform) == (
            other.req_id,
            other.full_id,
            other.platform,
        )


def _load(data: bytes, where: str) -> RunRecord:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise EnvctlError(
            f"not a run record: {exc}", file=where, rule="invalid-run-record"
        ) from None
    return validate(RunRecord, raw, file=where)


def local_path(pathspec: Pathspec, home: Path | None = None) -> Path:
    from envctl.materialize import envctl_home

    return (home or envctl_home()).joinpath(*pathspec.key.split("/"))


def register_run(
    record: RunRecord, *, home: Path | None = None, store: Store | None = None
) -> None:
    """Record which environment a step used, locally and (if given) in the store."""
    pathspec = parse_pathspec(record.pathspec)
    data = dump_json(record)
    atomic_write(local_path(pathspec, home), data)
    if store is None:
        return
    from envctl.store.base import WriteOnceError

    try:
        store.put_bytes(pathspec.key, data)
    except WriteOnceError:
        existing = _load(store.get_bytes(pathspec.key), store.describe(pathspec.key))
        if not existing.same_environment(record):
            raise StoreError(
                f"{pathspec} is already recorded with environment {existing.env_id}, "
                f"not {record.env_id}",
                file=store.describe(pathspec.key),
                rule="run-recorded",
                fix="a step of one run uses one environment; this is a new run id or a bug",
            ) from None


def lookup_run(
    pathspec: str | Pathspec, *, home: Path | None = None, store: Store | None = None
) -> RunRecord:
    """The environment ``pathspec`` used: the local registry first, then the store."""
    spec = parse_pathspec(pathspec) if isinstance(pathspec, str) else pathspec
    path = local_path(spec, home)
    if path.is_file():
        return _load(path.read_bytes(), str(path))
    if store is not None:
        from envctl.store.base import MissingObjectError

        try:
            return _load(store.get_bytes(spec.key), store.describe(spec.key))
        except MissingObjectError:
            pass
    raise NotFoundError(
        f"no environment is recorded for {spec}",
        rule="unknown-pathspec",
        fix="check the pathspec (Flow/run/step); steps record it when they run with "
        "@named_env, in the store when one is configured (--store / ENVCTL_STORE)",
    )
