"""The artifact store's lifecycle and the supply chain of its environments.

- :mod:`~envctl.lifecycle.verify`: is everything the protected branch locks in the store?
- :mod:`~envctl.lifecycle.reachability`: what the catalog's history still references
  under the retention policy (``retention:`` in catalog.yaml);
- :mod:`~envctl.lifecycle.gc`: mark-then-sweep garbage collection with a grace period;
- :mod:`~envctl.lifecycle.retire`: ``retired:`` on a frozen tag, and what ``create`` does
  with one (``retired_policy:``);
- :mod:`~envctl.lifecycle.sbom` (with :mod:`~envctl.lifecycle.pkgmeta`): CycloneDX and
  SPDX bills of materials;
- :mod:`~envctl.lifecycle.audit` (with :mod:`~envctl.lifecycle.osv`): locked packages
  against an offline OSV advisory file.

Importing this package loads nothing else: the CLI registers its commands cheaply.
"""

from __future__ import annotations


class RetiredTagWarning(UserWarning):
    """``create`` (or ``run``, ``export``) of a retired tag under ``retired_policy: warn``."""
