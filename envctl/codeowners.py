"""A CODEOWNERS file from the catalog's ``owners``, so that GitHub review enforces what the
pre-receive hook enforces where it can run: a change to an environment needs one of its
owners (or a catalog admin).

Each environment gets two lines, its file and its lock folder; ``catalog.yaml`` belongs to
the admins. Owners are GitHub handles or teams: one without ``@`` gets it prefixed
(``ranking`` -> ``@ranking``, ``@org/team`` stays). Paths are relative to the repository
root, so a catalog in a subfolder works too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from envctl.catalog import Catalog
from envctl.config import CONFIG_FILE
from envctl.errors import EnvctlError, MultipleErrors

HEADER = (
    "# Written by 'envctl codeowners' from the owners in the catalog; do not edit by hand.\n"
    "# Run it again after changing owners or admins ('envctl codeowners --check' in CI).\n"
)


def handle(owner: str) -> str:
    owner = owner.strip()
    return owner if "@" in owner else "@" + owner


def _owners(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(handle(n) for n in names if n.strip()))


def codeowners_text(catalog: Catalog, *, prefix: str = "") -> str:
    """The file's text. ``prefix`` is the catalog's folder in the repository (``catalog/``)."""
    base = "/" + (prefix.strip("/") + "/" if prefix.strip("/") else "")
    admins = _owners(catalog.config.admins)
    lines = [HEADER]
    if admins:
        lines.append(f"{base}{CONFIG_FILE} {' '.join(admins)}\n")
    errors: list[EnvctlError] = []
    for name in catalog.env_names():
        try:
            owners = _owners([*catalog.env(name).owners, *catalog.config.admins])
        except EnvctlError as exc:
            errors.append(exc)
            continue
        if not owners:
            continue  # nobody owns it: review rules alone apply
        who = " ".join(owners)
        lines.append(f"{base}{name.env_file} {who}\n")
        lines.append(f"{base}{name.lock_dir}/ {who}\n")
    if errors:
        raise MultipleErrors(errors, "cannot write CODEOWNERS: fix these files first")
    return "".join(lines)


def default_output(root: Path, repo_root: Path | None) -> Path:
    """``.github/CODEOWNERS`` at the repository root (GitHub reads it from there)."""
    return (repo_root or root) / ".github" / "CODEOWNERS"
