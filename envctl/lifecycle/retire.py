"""``envctl retire NAME:TAG --reason TEXT``: mark a frozen tag ``retired:``.

The one change the check allows on a frozen tag. Retiring edits the environment
file in the work tree (round-trip: comments, order and style kept; the file is
validated before and after, and replaced atomically), and optionally commits it on a
new branch, so it reaches the protected branch through a reviewed pull request.

What retirement means elsewhere:

- ``create`` of a retired tag warns or refuses, per ``retired_policy:`` in
  catalog.yaml (:func:`check_retired`, called by :func:`envctl.api.resolve_ref`);
- ``gc`` no longer keeps the tag's lock and packages for the tag itself (a mutable
  tag that pointed at it recently, or another tag sharing packages, still may), and
  deletes its alias record;
- ``verify`` skips it.

Pending tags, pointers and mutable tags are not retired: fix or delete those instead.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl import yamlio
from envctl.catalog import Catalog, WorkTreeSource, find_root
from envctl.errors import CatalogError, EnvctlError, NotFoundError, PolicyError
from envctl.fsutil import atomic_write
from envctl.lifecycle import RetiredTagWarning
from envctl.names import parse_alias
from envctl.spec import ConcreteTag, PointerTag, parse_env_file

__all__ = ["RetireResult", "RetiredTagWarning", "check_retired", "retire", "set_retired"]

if TYPE_CHECKING:
    from ruamel.yaml import YAML

    from envctl.lookup import ResolvedRef


@dataclass(frozen=True)
class RetireResult:
    alias: str
    reason: str
    file: str  # relative to the catalog root
    changed: bool  # False: it was already retired for this reason
    previous: str | None  # the reason it had before, if any
    commit: str | None = None
    branch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "reason": self.reason, "file": self.file,
                "changed": self.changed, "previous_reason": self.previous,
                "commit": self.commit, "branch": self.branch}


# -- round-trip YAML, as envctl.edit does it --------------------------------------------


def _round_trip(text: str) -> YAML:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver
    from ruamel.yaml.tag import Tag

    from envctl.edit import detect_indent

    null_tag = Tag(suffix="tag:yaml.org,2002:null")

    class StringResolver(VersionedResolver):
        # Every plain scalar stays a string (tag "1.10" is not the float 1.1), so
        # untouched lines are written back byte for byte; only null stays null.
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and implicit[0]:
                if value in ("", "~", "null", "Null", "NULL"):
                    return null_tag
                return self.DEFAULT_SCALAR_TAG
            return super().resolve(kind, value, implicit)

    indent = detect_indent(text)
    y = YAML(typ="rt")
    y.Resolver = StringResolver
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap a line the user wrote on one line
    y.indent(mapping=indent.mapping, sequence=indent.sequence, offset=indent.offset)
    return y


def _split_prelude(text: str) -> tuple[str, str]:
    """Leading comments and ``---``, which ruamel would drop, kept aside verbatim."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "%")):
            continue
        if stripped == "---":
            return "".join(lines[: i + 1]), "".join(lines[i + 1 :])
        break
    return "", text


def set_retired(data: bytes, tag: str, reason: str, *, file: str) -> bytes:
    """The env file ``data`` with ``retired: reason`` on ``tag``, every other line as it was."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from envctl.edit import needs_quotes

    text = data.decode("utf-8")
    crlf = "\r\n" in text
    prelude, body = _split_prelude(text.replace("\r\n", "\n"))
    y = _round_trip(body)
    doc = y.load(body)
    spec = doc["tags"][tag]
    quote = needs_quotes(reason) or ": " in reason or reason.startswith(("#", "'", '"'))
    value = DoubleQuotedScalarString(reason) if quote else reason
    if "retired" in spec:
        spec["retired"] = value  # a new reason, in place
    else:
        # First in the tag, where it is seen; appending would land after the trailing
        # comment and blank line that ruamel keeps with the tag's last value.
        spec.insert(0, "retired", value)
    out = io.StringIO()
    y.dump(doc, out)
    new = prelude + out.getvalue()
    if crlf:
        new = new.replace("\n", "\r\n")
    # Read back with the safe loader: the edit must leave a valid env file saying it.
    env = parse_env_file(yamlio.load(new, file=file), file=file)
    retired = env.tags[tag]
    assert isinstance(retired, ConcreteTag) and retired.retired == reason, "edit lost the reason"
    return new.encode("utf-8")


# -- retire -------------------------------------------------------------------------------


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or "\n" in reason or "\r" in reason:
        raise EnvctlError(
            "a retirement needs a one-line reason",
            rule="invalid-reason",
            fix='say why, e.g. --reason "CVE-2024-3651 in idna; use v4"',
        )
    return reason


def retire(
    root: str | os.PathLike[str] | None,
    alias_text: str,
    reason: str,
    *,
    branch: str | None = None,
    commit: bool = False,
) -> RetireResult:
    """Add ``retired: reason`` to the frozen tag ``alias_text`` of the catalog at ``root``.

    ``branch``: first create and switch to this git branch; ``commit`` (implied by
    ``branch``): commit the env file alone, ready to push for review.
    """
    reason = _check_reason(reason)
    base = find_root(explicit=root)
    catalog = Catalog(WorkTreeSource(base))
    alias = parse_alias(alias_text)
    spec = catalog.tag(alias)  # NotFoundError with suggestions
    rel = str(alias.env_file)
    where = {"file": rel, "tag": alias.tag}
    if isinstance(spec, PointerTag):
        raise PolicyError(f"{alias} is a pointer (to {spec.points_to}); pointers are not "
                          "retired", rule="retire-pointer", **where,
                          fix=f"retire {alias.name}:{spec.points_to}, or move the pointer")
    if catalog.is_mutable(alias.tag):
        raise PolicyError(f"{alias} is a mutable tag; only frozen immutable tags are retired",
                          rule="retire-mutable", **where,
                          fix="delete the tag, or move it, instead")
    state = catalog.info(alias).state
    if state == "pending":
        raise PolicyError(f"{alias} is pending (never locked), so there is nothing to retire",
                          rule="retire-pending", **where,
                          fix="fix or delete the tag: a pending tag may still change")
    pointers = catalog.pointers_to(alias)
    if pointers:
        listed = ", ".join(f"{alias.name}:{p}" for p in pointers)
        raise PolicyError(
            f"{listed} {'points' if len(pointers) == 1 else 'point'} to {alias}",
            rule="pointer-to-retired", **where,
            fix=f"move {'it' if len(pointers) == 1 else 'them'} first "
            f"(envctl tag {alias.name}:{pointers[0]} --points-to <tag>), then retire",
        )
    previous = spec.retired
    result = RetireResult(str(alias), reason, rel, previous != reason, previous)
    if result.changed:
        path = base / rel
        original = path.read_bytes()
        atomic_write(path, set_retired(original, alias.tag, reason, file=rel),
                        expected=original, rel=rel)
    if branch is None and not commit:
        return result
    sha = _commit(base, rel, f"Retire {alias}: {reason}", branch=branch,
                  changed=result.changed)
    return RetireResult(result.alias, reason, rel, result.changed, previous, sha, branch)


def _commit(base: Path, rel: str, message: str, *, branch: str | None, changed: bool) -> str:
    from envctl.git import run_git

    if branch is not None:
        proc = run_git(base, ["switch", "-q", "-c", branch], check=False)
        if proc.returncode != 0:
            raise CatalogError(
                f"cannot create branch {branch!r}: "
                f"{proc.stderr.decode('utf-8', 'replace').strip().splitlines()[-1:]}",
                rule="git-branch",
                fix="pick a branch name that does not exist yet",
            )
    if changed:
        # Only this file: changes the user has staged are left alone.
        run_git(base, ["commit", "-q", "-m", message, "--", rel])
    return run_git(base, ["rev-parse", "HEAD"]).stdout.decode().strip()


# -- create of a retired tag ------------------------------------------------------------


def check_retired(resolved: ResolvedRef, catalog: Catalog | None) -> str | None:
    """Apply ``retired_policy`` to a reference about to be created.

    Returns the warning text (and issues a :class:`RetiredTagWarning`) under ``warn``;
    raises :class:`~envctl.errors.PolicyError` under ``refuse``; None when the tag is
    not retired or no catalog says so (the store's records do not carry retirement).
    """
    if catalog is None or resolved.alias is None or resolved.source != "catalog":
        return None
    try:
        alias = parse_alias(resolved.alias)
        spec = catalog.tag(alias)
        policy = catalog.config.retired_policy
    except (NotFoundError, EnvctlError):
        return None
    if not isinstance(spec, ConcreteTag) or not spec.retired:
        return None
    shown = resolved.asked if resolved.asked == resolved.alias else (
        f"{resolved.asked} ({resolved.alias})")
    message = f"{shown} is retired: {spec.retired}"
    if policy == "refuse":
        raise PolicyError(
            message,
            file=str(alias.env_file),
            tag=alias.tag,
            rule="retired-tag",
            fix="use a newer tag (envctl show lists them); catalog.yaml's retired_policy is "
            "refuse",
        )
    warnings.warn(RetiredTagWarning(message), stacklevel=3)
    return message
