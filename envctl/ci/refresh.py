"""``envctl ci refresh``: re-resolve rolling tags (nightly) and commit a lock only when it changed.

A rolling tag is a mutable tag with its own spec (``nightly: {dependencies: [...]}``):
it resolves against whatever its channels offer now (no ``exclude_newer``). The
resolver writes nothing when the new solve gives the same ids, so a refresh whose
channels did not change commits nothing; when a newer package appears, the tag gets a
new lock and meta in one signed commit, and ``git log`` of the lock file is the tag's
history.

A refresh is a normal CI run with every rolling tag added to its plan: whatever the
plan holds (tags pushed since the last CI commit) is locked too, which keeps the
invariant that a CI commit accounts for every tag pending at its parent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.errors import EnvctlError
from envctl.names import Alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.ci.report import Report
    from envctl.ci.results import JobResult
    from envctl.ci.run import Hooks, RunOptions
    from envctl.store import Store


def rolling_tags(catalog: Catalog) -> list[str]:
    """Every rolling tag of the catalog, sorted.

    The one scan of the catalog in envctl ci: refreshing rolling tags means visiting
    each of them, so its cost follows how many there are.
    """
    from envctl.spec import ConcreteTag

    out = []
    for name in catalog.env_names():
        try:
            env = catalog.env(name)
        except EnvctlError:
            continue  # lint reports broken files; a refresh skips them
        for tag, spec in env.tags.items():
            if isinstance(spec, ConcreteTag) and not spec.retired and catalog.is_mutable(tag):
                out.append(str(Alias(name, tag)))
    return sorted(out)


def refresh(
    root: Path,
    store: Store,
    *,
    now: datetime,
    options: RunOptions | None = None,
    hooks: Hooks | None = None,
) -> tuple[Report, JobResult | None]:
    """Re-resolve every rolling tag (plus the plan); see the module docstring."""
    from envctl.ci.run import RunOptions, run_ci

    options = replace(options or RunOptions(), refresh=True)
    return run_ci(root, store, now=now, options=options, hooks=hooks)
