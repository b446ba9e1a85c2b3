"""Review and discovery: what a change really does, and what the catalog holds.

- :mod:`~envctl.report.diff`: package-level diff of two locks (``envctl diff``);
- :mod:`~envctl.report.sides`: what a diff side names (``name:tag@rev``, ids, lockfiles);
- :mod:`~envctl.report.locks`: a tolerant reader for conda-lock files other tools wrote;
- :mod:`~envctl.report.changes`: tag-by-tag changes between two catalog revisions;
- :mod:`~envctl.report.history`: every position a tag held on the protected branch;
- :mod:`~envctl.report.pr_summary`: the pull request comment;
- :mod:`~envctl.report.search`: find environments by text or by a package they ship;
- :mod:`~envctl.report.site`: the static HTML catalog.

Each module documents the JSON shape its ``to_dict`` returns; those shapes are what the
``--json`` options print, and they only ever grow (new keys at the end). Nothing here
prints; jinja2 and rattler are imported only when a report needs them.
"""
