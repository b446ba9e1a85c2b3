"""Resolve catalog tags into conda-lock v1 lockfiles and ``<tag>.meta.yaml``.

Modules (each imports rattler, uv or conda-lock only inside its functions, so the
CLI and the hook can import this package for free):

- ``ids``: ``full_id`` (the solved half of ``req_id:full_id``).
- ``lockfile``: the conda-lock v1 writer (through conda-lock's own models) and
  ``read_lock``, a fast reader that does not import conda-lock.
- ``channels``: logical channel name -> URL (relative paths are relative to the
  catalog root), credential redaction, which channel a package URL came from.
- ``conda``: one platform's conda solve with py-rattler, readable errors.
- ``pypi``: one platform's PyPI solve with uv, after the conda part.
- ``extends``: pinning a base tag's lock and explaining conflicts with it.
- ``history``: when a tag was added (its ``exclude_newer``).
- ``api``: resolve tags of a catalog work tree and write lock + meta.
"""
