"""``envctl ci run``: plan, resolve, upload and verify, commit back, publish aliases.

One attempt, on a checkout fast-forwarded to the branch tip:

1. plan (:mod:`envctl.ci.plan`) at HEAD;
2. resolve each planned tag in the work tree (``envctl.resolve``; ``force`` so a lock a
   failed run left in the work tree is resolved again), crediting the author of the
   commit that added the tag; a tag that fails stays pending and the others go on;
3. upload its packages (fetched from the lock's URLs and checked against its sha256),
   lock and environment records, then verify them in the store. A store failure stops
   the job before any commit; a rerun sends only what is missing;
4. prepare the signed commit on HEAD and push it (:mod:`envctl.ci.commit`).

If the push loses a race, the checkout is fast-forwarded to the new tip and the attempt
repeats: the plan now also holds what arrived (so it is locked too, not lost), and tags
already resolved are kept when their specs still give the same req_ids — only new work
is resolved and uploaded. Bounded by ``max_attempts``. After the commit lands, alias
records are published and the checkout moves to the new commit, so a second run finds
nothing to do.

``--no-commit`` (fan-out jobs) stops after step 3 and writes a results folder for
``envctl ci commit``, which commits results of many jobs at once (:func:`commit_results`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from envctl.ci import artifacts
from envctl.ci.commit import (
    DEFAULT_ATTEMPTS,
    BeforePush,
    Signer,
    backoff,
    land,
    load_signer,
    lost_races,
    prepare,
    push,
    refused_error,
    screen,
    sync_worktree,
)
from envctl.ci.plan import Added, Plan, first_declared, make_plan
from envctl.ci.repo import CatalogRepo, file_bytes
from envctl.ci.report import Report
from envctl.ci.results import JobResult, PlatformIds, TagOutcome, failure, read_results
from envctl.errors import EnvctlError, GitError
from envctl.names import Alias, parse_alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.resolve.api import ResolveEvent, Resolver
    from envctl.store import Store
    from envctl.store.upload import UploadProgress

Stage = Literal["sync", "plan", "resolve", "upload", "verify", "commit", "race", "publish"]


@dataclass(frozen=True)
class CiEvent:
    stage: Stage
    alias: str | None = None
    detail: str = ""


@dataclass
class Hooks:
    """Callbacks for the CLI (progress) and tests (a deterministic race)."""

    on_event: Callable[[CiEvent], None] | None = None
    on_resolve: Callable[[ResolveEvent], None] | None = None
    on_upload: Callable[[str, UploadProgress], None] | None = None
    before_push: BeforePush | None = None

    def emit(self, stage: Stage, alias: str | None = None, detail: str = "") -> None:
        if self.on_event is not None:
            self.on_event(CiEvent(stage, alias, detail))


@dataclass
class RunOptions:
    since: str | None = None
    only: Sequence[str] = ()
    all_tags: bool = False
    commit: bool = True
    remote: str = "origin"
    max_attempts: int = DEFAULT_ATTEMPTS
    refresh: bool = False  # also re-resolve every rolling tag (envctl ci refresh)
    sign_key: str | None = None
    cache: Path | None = None  # package cache (default: $ENVCTL_HOME/pkgs)


def _iso(moment: datetime) -> str:
    from envctl.resolve.history import iso

    return iso(moment)


def _cache(options: RunOptions) -> Path:
    if options.cache is not None:
        return options.cache
    from envctl.materialize import package_cache

    return package_cache()


# -- resolve + upload -------------------------------------------------------------------


@dataclass
class _Work:
    """One job's resolving and uploading, shared by every attempt of a run."""

    repo: CatalogRepo
    store: Store
    now: datetime
    hooks: Hooks
    cache: Path
    default_by: str
    written: dict[str, bytes] = field(default_factory=dict)  # files this run put in the tree
    done: dict[str, TagOutcome] = field(default_factory=dict)  # resolved and uploaded
    _added: dict[tuple[str, str], dict[str, Added]] = field(default_factory=dict)

    def added(self, head: str, alias: Alias) -> Added | None:
        """The commit (and author) that added the tag: "resolved by" credits that author."""
        known = self._added.setdefault((head, str(alias.env_file)), {})
        if alias.tag not in known:
            # Walks the file's history from the oldest commit and stops at the tag: what
            # it found on the way holds too (a tag's first declaration is before it).
            known.update(first_declared(self.repo, head, str(alias.env_file), [alias.tag]))
        return known.get(alias.tag)

    def reuse(self, catalog: Catalog, aliases: Sequence[str]) -> list[TagOutcome]:
        """Outcomes of earlier attempts that still hold at HEAD (same req_ids, not locked
        by anyone else); their files go back into the work tree for bases to be found."""
        earlier = [self.done[a] for a in aliases if a in self.done]
        kept, dropped = screen(catalog, earlier)
        for item in dropped:
            self.done.pop(item.alias, None)  # its spec changed or it got locked: redo or drop
        for outcome in kept:
            self._write(outcome.files)
        return kept

    def _write(self, files: dict[str, bytes]) -> None:
        from envctl.fsutil import atomic_write

        for rel, data in files.items():
            atomic_write(self.repo.root / rel, data)
            self.written[rel] = data

    def resolve(self, head: str, aliases: Sequence[str]) -> list[TagOutcome]:
        """Resolve ``aliases`` in the work tree; failures become failed outcomes."""
        from envctl.resolve.api import Resolver

        if not aliases:
            return []
        writes: list[str] = []

        def reporter(event: ResolveEvent) -> None:
            if event.stage == "written":
                writes.append(event.alias)
            if self.hooks.on_resolve is not None:
                self.hooks.on_resolve(event)

        resolver = Resolver(root=self.repo.root, resolved_at=self.now, resolved_by="",
                            force=True, reporter=reporter)
        outcomes: dict[str, TagOutcome] = {}
        for text in aliases:
            self.hooks.emit("resolve", text)
            outcomes[text] = self._resolve_one(resolver, head, text)
        # A base the resolver had to resolve first is committed with the tag extending it.
        for text in writes:
            if text not in outcomes or outcomes[text].status != "resolved":
                outcomes[text] = self._written(head, parse_alias(text), "resolved")
        return list(outcomes.values())

    def _resolve_one(self, resolver: Resolver, head: str, text: str) -> TagOutcome:
        try:
            alias = parse_alias(text)
            added = self.added(head, alias)
            resolver.resolved_by = added.author if added else self.default_by
            result = resolver.resolve(alias)
        except EnvctlError as exc:
            return failure(text, exc, mutable=self._mutable(text))
        if result.status == "resolved":
            return self._written(head, alias, result.message)
        platforms = tuple(PlatformIds(p.platform, p.req_id, p.full_id) for p in result.platforms)
        status = result.status if result.status in ("unchanged", "frozen") else "skipped"
        return TagOutcome(text, status, result.message, mutable=self._mutable(text),
                          platforms=platforms)  # type: ignore[arg-type]

    def _mutable(self, text: str) -> bool:
        try:
            return self.repo.work_catalog().is_mutable(parse_alias(text).tag)
        except EnvctlError:
            return False

    def _written(self, head: str, alias: Alias, message: str) -> TagOutcome:
        from envctl.catalog import Catalog, WorkTreeSource

        files = {}
        for rel in (str(alias.lock_path), str(alias.meta_path)):
            data = file_bytes(self.repo.root / rel)
            if data is None:
                raise GitError(f"the resolver reported {rel} written, but it is missing",
                               file=rel, rule="internal")
            files[rel] = data
            self.written[rel] = data
        meta = Catalog(WorkTreeSource(self.repo.root)).meta(alias)
        assert meta is not None
        added = self.added(head, alias)
        return TagOutcome(
            str(alias), "resolved", message,
            mutable=self._mutable(str(alias)),
            platforms=tuple(PlatformIds(p, m.req_id, m.full_id)
                            for p, m in sorted(meta.platforms.items())),
            resolved_by=meta.resolved_by,
            added_in=added.commit if added else None,
            lock_sha256=meta.lock_sha256,
            files=files,
        )

    def _progress(self, alias: str) -> Callable[[UploadProgress], None] | None:
        on_upload = self.hooks.on_upload
        if on_upload is None:
            return None
        return lambda item: on_upload(alias, item)

    def upload(self, outcomes: Sequence[TagOutcome]) -> list[TagOutcome]:
        """Upload and verify every resolved outcome. A store failure raises: the job stops."""
        catalog = self.repo.work_catalog()
        out = []
        for outcome in outcomes:
            if outcome.status != "resolved":
                out.append(outcome)
                continue
            earlier = self.done.get(outcome.alias)
            if earlier is not None and earlier.files == outcome.files:
                out.append(earlier)  # uploaded by an earlier attempt
                continue
            alias = parse_alias(outcome.alias)
            meta, lock = outcome.meta(), outcome.lock_bytes()
            self.hooks.emit("upload", outcome.alias)
            sent = artifacts.upload_tag(self.store, catalog, alias, lock, meta,
                                        cache=self.cache, progress=self._progress(outcome.alias))
            self.hooks.emit("verify", outcome.alias)
            artifacts.verify_tag(self.store, lock, meta, alias)
            done = replace(outcome, uploaded=sent.uploaded, skipped=sent.skipped,
                           bytes=sent.bytes)
            self.done[outcome.alias] = done
            out.append(done)
        return out


def _targets(repo: CatalogRepo, plan: Plan, options: RunOptions, catalog: Catalog,
             ) -> tuple[list[str], list[str]]:
    """(tags to resolve in this job, tags left pending: to other jobs or a later run).

    ``--since`` narrows the diff, but the commit back must still account for every tag
    pending since the last CI commit: those outside this run's plan are named pending.
    """
    planned = plan.resolve
    wider = make_plan(repo).resolve if options.since is not None else planned
    extra: list[str] = []
    if options.refresh:
        from envctl.ci.refresh import rolling_tags

        extra = [a for a in rolling_tags(catalog) if a not in planned]
    targets = [str(parse_alias(a)) for a in options.only] if options.only else [*planned, *extra]
    return targets, [a for a in dict.fromkeys([*planned, *wider]) if a not in targets]


def _publish(
    work: _Work, report: Report, rev: str, aliases: Sequence[str], hooks: Hooks
) -> None:
    if not aliases:
        return
    catalog = work.repo.catalog(rev)
    hooks.emit("publish", None, f"{len(aliases)} alias(es)")
    report.published = artifacts.publish_aliases(
        work.store, catalog, artifacts.with_pointers(catalog, aliases),
        commit=rev, published_at=_iso(work.now), cache=work.cache,
    )


# -- the run ----------------------------------------------------------------------------


def run_ci(
    root: Path,
    store: Store,
    *,
    now: datetime,
    options: RunOptions | None = None,
    hooks: Hooks | None = None,
) -> tuple[Report, JobResult | None]:
    """Run the CI loop (see the module docstring). Returns the report and, for
    ``--results``, what the job produced. Problems during the run are in the report
    (non-zero ``exit_code``); a setup problem (no signing key) raises before any work."""
    options = options or RunOptions()
    hooks = hooks or Hooks()
    started = time.monotonic()
    repo = CatalogRepo.open(root)
    config = repo.work_catalog().config
    signer = load_signer(config, options.sign_key) if options.commit else None
    report = Report(command="refresh" if options.refresh else "run", store=store.url)
    work = _Work(repo, store, now, hooks, _cache(options),
                 default_by=signer.principal if signer else "envctl ci")
    job: JobResult | None = None
    try:
        job = _attempts(repo, work, report, config.branch, signer, options, hooks)
    except EnvctlError as exc:
        report.fail(exc)
    report.seconds = time.monotonic() - started
    return report, job


def _attempts(
    repo: CatalogRepo,
    work: _Work,
    report: Report,
    branch: str,
    signer: Signer | None,
    options: RunOptions,
    hooks: Hooks,
) -> JobResult | None:
    if signer is not None:
        hooks.emit("sync", None, f"{options.remote}/{branch}")
        tip = repo.fetch(options.remote, branch)
        if not sync_worktree(repo, tip, {}):
            raise GitError(
                f"this checkout cannot fast-forward to {options.remote}/{branch}",
                file=str(repo.top),
                rule="checkout-diverged",
                fix="run envctl ci in a clean checkout of the protected branch (or use "
                "--no-commit to resolve and upload only)",
            )
    for attempt in range(1, options.max_attempts + 1):
        report.attempts = attempt
        head = repo.rev("HEAD")
        hooks.emit("plan", None, head[:12])
        plan = make_plan(repo, since=options.since, all_tags=options.all_tags)
        report.plan = plan.to_dict()
        catalog = repo.work_catalog()
        targets, deferred = _targets(repo, plan, options, catalog)
        reused = work.reuse(catalog, targets)
        fresh = work.resolve(head, [a for a in targets if a not in {o.alias for o in reused}])
        by_alias = {o.alias: o for o in [*reused, *fresh]}
        outcomes = list(by_alias.values())
        report.outcomes = outcomes
        try:
            outcomes = work.upload(outcomes)
        except EnvctlError as exc:
            # The store failed (or a file did not match its lock): nothing may be committed.
            report.outcomes = [o if o.alias in work.done or o.status != "resolved" else
                               o.failed(exc, "not uploaded: the job stopped") for o in outcomes]
            report.fail(exc)
            return _job(plan.head, work, report.outcomes, deferred)
        report.outcomes = outcomes
        pending = {o.alias: o.message for o in outcomes if o.status == "failed"}
        pending.update({a: "not in this run (--only / --since)" for a in deferred})
        if signer is None:
            report.pending = pending
            return _job(plan.head, work, outcomes, deferred)

        hooks.emit("commit", None, f"on {head[:12]}")
        candidate = prepare(repo, head, outcomes, signer=signer, pending=pending,
                            planned_head=head, subject="refresh" if options.refresh else "lock")
        report.dropped = list(candidate.dropped)
        report.pending = dict(candidate.pending)
        if candidate.commit is None:
            _publish(work, report, head, plan.publish, hooks)
            return None
        if hooks.before_push is not None:
            hooks.before_push(attempt, candidate)
        result = push(repo, options.remote, branch, candidate.commit, head)
        if result.status == "landed":
            report.commit, report.landed = candidate.commit, True
            if not sync_worktree(repo, candidate.commit, work.written):
                report.warnings.append(
                    f"the checkout was not moved to {candidate.commit[:12]} (local changes)"
                )
            work.written.clear()
            _publish(work, report, candidate.commit,
                     [*(o.alias for o in candidate.kept), *plan.publish], hooks)
            return None
        if result.status == "refused":
            raise refused_error(result, branch)
        report.races += 1
        hooks.emit("race", None, f"{branch} moved to {result.tip[:12]}; retrying")
        backoff(attempt)
        if not sync_worktree(repo, result.tip, work.written):
            raise GitError(f"cannot fast-forward the checkout to {result.tip[:12]}",
                           rule="checkout-diverged",
                           fix="run envctl ci in a clean checkout of the protected branch")
        work.written.clear()
    raise lost_races(branch, options.max_attempts)


def _job(head: str, work: _Work, outcomes: Sequence[TagOutcome],
         deferred: Sequence[str]) -> JobResult:
    return JobResult(head=head, store=work.store.url, outcomes=tuple(outcomes),
                     deferred=tuple(deferred))


# -- envctl ci commit ---------------------------------------------------------------------


def commit_results(
    root: Path,
    store: Store,
    folders: Sequence[Path],
    *,
    now: datetime,
    sign_key: str | None = None,
    remote: str = "origin",
    max_attempts: int = DEFAULT_ATTEMPTS,
    hooks: Hooks | None = None,
    cache: Path | None = None,
) -> Report:
    """Collect fan-out results into one commit back (``envctl ci commit``).

    Every outcome is verified in the store again first: the jobs that uploaded may have
    used another store, or failed after writing their results.
    """
    hooks = hooks or Hooks()
    started = time.monotonic()
    repo = CatalogRepo.open(root)
    report = Report(command="commit", store=store.url)
    try:
        jobs = [read_results(Path(f)) for f in folders]
        config = repo.work_catalog().config
        signer = load_signer(config, sign_key)
        outcomes, pending, head = _collect(repo, jobs, report)
        checked = []
        for outcome in outcomes:
            if outcome.status != "resolved":
                checked.append(outcome)
                continue
            try:
                artifacts.verify_tag(store, outcome.lock_bytes(), outcome.meta(),
                                     parse_alias(outcome.alias))
                checked.append(outcome)
            except EnvctlError as exc:
                checked.append(outcome.failed(exc))
                pending[outcome.alias] = exc.message
        report.outcomes = checked
        landing = land(repo, checked, remote=remote, branch=config.branch, signer=signer,
                       pending=pending, planned_head=head, max_attempts=max_attempts,
                       before_push=hooks.before_push)
        report.attempts, report.races = landing.attempts, len(landing.races)
        if landing.candidate is not None:
            report.dropped = list(landing.candidate.dropped)
            report.pending = dict(landing.candidate.pending)
        work = _Work(repo, store, now, hooks, cache or _cache(RunOptions()), "envctl ci")
        if landing.landed and landing.candidate is not None:
            report.commit, report.landed = landing.candidate.commit, True
            _publish(work, report, landing.candidate.commit or "",
                     [o.alias for o in landing.candidate.kept], hooks)
    except EnvctlError as exc:
        report.fail(exc)
    report.seconds = time.monotonic() - started
    return report


def _collect(repo: CatalogRepo, jobs: Sequence[JobResult], report: Report,
             ) -> tuple[list[TagOutcome], dict[str, str], str]:
    if not jobs:
        raise EnvctlError("no results to commit", rule="invalid-results",
                          fix="pass --results DIR for each job's results folder")
    outcomes: dict[str, TagOutcome] = {}
    pending: dict[str, str] = {}
    for job in jobs:
        for error in job.errors:
            report.errors.append(dict(error))
        for outcome in job.outcomes:
            first = outcomes.get(outcome.alias)
            if first is not None and first.files != outcome.files:
                report.warnings.append(f"{outcome.alias} was resolved by two jobs; the "
                                       "first result is used")
                continue
            outcomes.setdefault(outcome.alias, outcome)
            if outcome.status == "failed":
                pending[outcome.alias] = outcome.message
        for alias in job.deferred:
            pending.setdefault(alias, "left to another job")
    for alias in list(pending):
        if alias in outcomes and outcomes[alias].status == "resolved":
            del pending[alias]
    # The oldest head the jobs planned at: what arrived after it is named pending.
    head = jobs[0].head
    for job in jobs[1:]:
        if job.head != head and repo.is_ancestor(job.head, head):
            head = job.head
    return list(outcomes.values()), pending, head

