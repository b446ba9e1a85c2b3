"""CI: resolve what changed on the protected branch, upload it, commit the hashes back.

The loop that turns a merged pull request into a consumable environment:

1. :mod:`~envctl.ci.plan` finds the tags to work on from the git diff since the last
   commit CI signed (plus the tags a failed run left pending, read from that commit's
   ``Envctl-Pending:`` trailers), so the cost follows the change, not the catalog;
2. :mod:`~envctl.ci.run` resolves them (:mod:`envctl.resolve`), fetches every package
   from the lock's URLs, checks its sha256, uploads packages, lock and environment
   records (:mod:`~envctl.ci.artifacts`) and verifies them in the store;
3. :mod:`~envctl.ci.commit` makes one signed commit of locks and metas on the branch
   tip, re-checked with the same rules as the pre-receive hook, and pushes it; a push
   that loses a race is redone on the new tip, bounded; after it lands, alias records
   are published to the store;
4. :mod:`~envctl.ci.refresh` re-resolves rolling tags (nightly);
5. :mod:`~envctl.ci.report` renders the outcome as JSON and a markdown job summary.

The invariant that makes "since the last CI commit" safe: every commit CI pushes
accounts for every tag pending at its parent, either locked in it or named in an
``Envctl-Pending:`` trailer. Nothing here prints; ``envctl.cli.ci_cmds`` renders.
"""

from __future__ import annotations
