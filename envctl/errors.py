"""One error hierarchy. Every refusal names the file, the tag, the rule and the fix.

The CLI has exactly one handler (``envctl.cli.main``) that turns an
``EnvctlError`` into one clear line and a non-zero exit; any other exception
reaching it is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file (relative to the catalog root when known), a line, a tag."""

    file: str | None = None
    line: int | None = None
    tag: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line:
            where += f":{self.line}"
        if self.tag:
            where = f"{where} [{self.tag}]" if where else f"[{self.tag}]"
        return where


class EnvctlError(Exception):
    """Base of every error envctl reports to a user.

    ``rule`` is a short stable identifier (``frozen-tag``, ``invalid-name``...)
    that tests and ``--json`` consumers match on; ``fix`` says what to do instead.
    """

    exit_code = 1
    default_rule = "error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        tag: str | None = None,
        rule: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = Location(file=file, line=line, tag=tag)
        self.rule = rule or self.default_rule
        self.fix = fix

    @property
    def file(self) -> str | None:
        return self.location.file

    @property
    def line(self) -> int | None:
        return self.location.line

    @property
    def tag(self) -> str | None:
        return self.location.tag

    def render(self) -> str:
        """One line: ``where: message (rule) — fix``."""
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        text += f" [{self.rule}]"
        if self.fix:
            text += f" — {self.fix}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "tag": self.tag,
            "rule": self.rule,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        return self.render()


class InvalidNameError(EnvctlError):
    default_rule = "invalid-name"


class YamlError(EnvctlError):
    default_rule = "unsafe-yaml"


class CatalogError(EnvctlError):
    default_rule = "invalid-catalog"


class NotFoundError(EnvctlError):
    default_rule = "not-found"


class PolicyError(EnvctlError):
    default_rule = "policy"


class SolveError(EnvctlError):
    default_rule = "unsolvable"


class StoreError(EnvctlError):
    default_rule = "store"


class GitError(EnvctlError):
    default_rule = "git"


class LockfileError(EnvctlError):
    default_rule = "invalid-lockfile"


class MultipleErrors(EnvctlError):
    """Several problems found in one pass (lint, a validated file); each is reported."""

    default_rule = "multiple"

    def __init__(self, errors: list[EnvctlError], summary: str | None = None) -> None:
        self.errors = errors
        super().__init__(summary or f"{len(errors)} problem(s) found")

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)
