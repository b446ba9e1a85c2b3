"""When a tag was added: the ``exclude_newer`` of its resolve.

A tag resolves with ``exclude_newer`` = the committer time of the first commit
whose version of the environment file declares it, so resolving it again next
year picks the same packages. Found with ``git log`` on the env file (oldest
first) and one ``git cat-file --batch`` process reading each version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from envctl import yamlio
from envctl.errors import EnvctlError
from envctl.git import BlobReader, run_git, toplevel


def iso(moment: datetime) -> str:
    """``2024-05-01T12:00:00Z``: UTC, whole seconds, the one text form envctl records."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; pass an aware one (UTC)")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """The inverse of :func:`iso`; also accepts any ISO 8601 time with a zone."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add 'Z' for UTC")
    return value.astimezone(UTC)


def _declares(data: bytes | None, tag: str, path: str) -> bool:
    if data is None:
        return False
    try:
        doc = yamlio.load(data, file=path, lines=False)
    except EnvctlError:
        return False  # a broken revision of the file declares nothing
    tags = doc.get("tags") if isinstance(doc, dict) else None
    return isinstance(tags, dict) and tag in tags


def tag_added_at(root: Path, env_file: str, tag: str) -> datetime | None:
    """Committer time (UTC) of the first commit whose ``env_file`` declares ``tag``.

    ``env_file`` is relative to the catalog ``root`` (which may be a folder of a larger
    repository). None when the catalog is not in git or no commit declares the tag yet.
    """
    # Paths relative to the catalog root, which git resolves from ``-C root`` (``:./path``
    # in an object name): no extra process to find the top of the repository.
    proc = run_git(
        root, ["log", "--reverse", "--format=%H %ct", "HEAD", "--", env_file], check=False
    )
    if proc.returncode != 0:
        return None  # not a repository, or no commits yet
    reader = BlobReader(root)
    try:
        for line in proc.stdout.decode().splitlines():
            sha, _, seconds = line.partition(" ")
            if _declares(reader.read(f"{sha}:./{env_file}"), tag, env_file):
                return datetime.fromtimestamp(int(seconds), UTC)
    finally:
        reader.close()
    return None


def committed_at_head(root: Path, path: str) -> bool:
    """Whether ``path`` (relative to the catalog root) exists in the HEAD commit."""
    top = toplevel(root)
    if top is None:
        return False
    rel = (root.resolve() / path).relative_to(top.resolve()).as_posix()
    return run_git(top, ["cat-file", "-e", f"HEAD:{rel}"], check=False).returncode == 0


def changed_env_files(root: Path, rev: str) -> list[str]:
    """Env files (relative to the catalog root) that differ between ``rev`` and the work tree."""
    top = toplevel(root)
    if top is None:
        raise EnvctlError(
            f"{root} is not in a git repository, so --changed-since cannot be used",
            rule="not-a-repo",
            fix="run 'git init' there or name the environments to resolve",
        )
    out = run_git(root, ["diff", "--name-only", "--relative", rev, "--", "envs"]).stdout.decode()
    tracked = [line for line in out.splitlines() if line.strip()]
    untracked = run_git(
        root, ["ls-files", "--others", "--exclude-standard", "--", "envs"]
    ).stdout.decode()
    files = {*tracked, *(line for line in untracked.splitlines() if line.strip())}
    return sorted(f for f in files if f.endswith(".yaml") and (root / f).is_file())
