"""envctl: a git-backed, declarative catalog of named conda/PyPI environments."""

__version__ = "0.1.0"
