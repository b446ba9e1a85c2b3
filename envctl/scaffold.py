"""``envctl init``: create a new catalog repository.

The files come from ``envctl/templates/*.j2`` (a sandboxed jinja2 environment:
the values are the user's own, but nothing in a template should be able to
reach Python). The generated ``catalog.yaml`` is read back with the same
loader and model every other command uses before anything is written, so
``init`` can never leave a catalog that ``lint`` would refuse.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path

from envctl import yamlio
from envctl.config import CONFIG_FILE, DEFAULT_MUTABLE_TAGS, CatalogConfig, parse_config
from envctl.edit import needs_quotes
from envctl.errors import CatalogError
from envctl.git import run_git

DEFAULT_CHANNELS: dict[str, str] = {"conda-forge": "https://conda.anaconda.org/conda-forge"}
DEFAULT_PLATFORMS: tuple[str, ...] = ("linux-64",)
INITIAL_COMMIT_MESSAGE = "Create catalog with envctl init"

#: Template name -> path in the new catalog.
TEMPLATES: dict[str, str] = {
    "catalog.yaml.j2": CONFIG_FILE,
    "README.md.j2": "README.md",
    "validate.yml.j2": ".github/workflows/validate.yml",
    "resolve.yml.j2": ".github/workflows/resolve.yml",
    "refresh.yml.j2": ".github/workflows/refresh.yml",
}
KEEP_FILES = ("envs/.gitkeep", "locks/.gitkeep")

# Used only when git has no identity configured, so init works on a fresh machine or CI
# runner; a configured user.name / user.email always wins.
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "envctl init",
    "GIT_AUTHOR_EMAIL": "envctl@localhost",
    "GIT_COMMITTER_NAME": "envctl init",
    "GIT_COMMITTER_EMAIL": "envctl@localhost",
}


def parse_channel_option(text: str) -> tuple[str, str]:
    """``NAME=URL`` (the ``--channel`` option of ``init``) -> ``(name, url)``."""
    name, sep, url = text.partition("=")
    if not sep or not name.strip() or not url.strip():
        raise CatalogError(
            f"--channel {text!r} is not NAME=URL",
            rule="invalid-option",
            fix="write it like --channel conda-forge=https://conda.anaconda.org/conda-forge",
        )
    return name.strip(), url.strip()


def parse_channel_options(texts: Sequence[str]) -> dict[str, str]:
    """Every ``--channel NAME=URL`` of ``init``, in order; a name given twice is refused."""
    channels: dict[str, str] = {}
    for text in texts:
        name, url = parse_channel_option(text)
        if name in channels:
            raise CatalogError(
                f"--channel {name} is given twice", rule="invalid-option",
                fix="give each channel name once",
            )
        channels[name] = url
    return channels


def parse_signer_option(text: str) -> tuple[str, str]:
    """``PRINCIPAL=PUBLIC_KEY_FILE`` (an ssh ``.pub`` file) -> (principal, key line)."""
    principal, sep, path = text.partition("=")
    if not sep or not principal.strip() or not path.strip():
        raise CatalogError(
            f"--signer {text!r} is not PRINCIPAL=PUBLIC_KEY_FILE",
            rule="invalid-option",
            fix="e.g. --signer ci@example.com=~/.ssh/envctl_ci.pub",
        )
    key_file = Path(path.strip()).expanduser()
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CatalogError(
            f"cannot read the public key {key_file}: {exc.strerror}",
            file=str(key_file),
            rule="invalid-option",
            fix="generate one with: ssh-keygen -t ed25519 -f envctl_ci",
        ) from None
    return principal.strip(), key


def init_catalog(
    dest: str | os.PathLike[str],
    *,
    channels: Mapping[str, str] | None = None,
    platforms: Sequence[str] | None = None,
    store: str | None = None,
    pypi_index: str | None = None,
    signers: Mapping[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Create a catalog git repository at ``dest`` with one initial commit; return its path.

    ``dest`` must be missing or empty unless ``force``; with ``force`` files that already
    exist there are kept as they are (only a second ``catalog.yaml`` is refused).
    """
    root = Path(dest).expanduser().absolute()
    config = _config(channels, platforms, store, pypi_index, signers)
    _check_destination(root, force=force)
    rendered = _render_all(config)
    written = _write_files(root, rendered)
    _commit(root, config.branch, written)
    return root


def _config(
    channels: Mapping[str, str] | None,
    platforms: Sequence[str] | None,
    store: str | None,
    pypi_index: str | None,
    signers: Mapping[str, str] | None = None,
) -> CatalogConfig:
    data: dict[str, object] = {
        "version": "1",
        "channels": dict(channels) if channels else dict(DEFAULT_CHANNELS),
        "platforms": list(dict.fromkeys(platforms or DEFAULT_PLATFORMS)),
        "mutable_tags": list(DEFAULT_MUTABLE_TAGS),
        "branch": "main",
        "store": store,
        "pypi_index": pypi_index,
        "allowed_signers": [
            {"principal": principal, "key": key} for principal, key in (signers or {}).items()
        ],
    }
    # The options are validated by the model (platform names, channel names) with the
    # same messages 'lint' would give, before any file exists.
    return parse_config(data, file="init options")


def _check_destination(root: Path, *, force: bool) -> None:
    if root.exists() and not root.is_dir():
        raise CatalogError(
            f"{root} exists and is not a directory",
            file=str(root),
            rule="not-a-directory",
            fix="choose a new directory name",
        )
    if (root / CONFIG_FILE).exists():
        raise CatalogError(
            f"{root} already has a {CONFIG_FILE}",
            file=str(root / CONFIG_FILE),
            rule="already-a-catalog",
            fix="use the existing catalog, or choose a new directory",
        )
    if root.is_dir() and any(root.iterdir()) and not force:
        raise CatalogError(
            f"{root} is not empty",
            file=str(root),
            rule="not-empty",
            fix="choose a new or empty directory, or pass --force to add a catalog to it "
            "(existing files are kept)",
        )


_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@+=~-]*")


def yaml_scalar(value: object) -> str:
    """``value`` as a YAML scalar: plain when that reads back as the same string, else a
    JSON string (a valid YAML double-quoted scalar), so no value can be retyped or break
    the file's structure, whatever it contains."""
    text = str(value)
    if _PLAIN_SAFE.fullmatch(text) and not text.endswith(":") and not needs_quotes(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _render_all(config: CatalogConfig) -> dict[str, str]:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        keep_trailing_newline=True, undefined=StrictUndefined, autoescape=False
    )
    env.filters["q"] = yaml_scalar
    context = {
        "title": "Environment catalog",
        "channels": config.channels,
        "platforms": config.platforms,
        "mutable_tags": config.mutable_tags,
        "branch": config.branch,
        "store": config.store,
        "pypi_index": config.pypi_index,
        "signers": config.allowed_signers,
    }
    templates = files("envctl") / "templates"
    out: dict[str, str] = {}
    for template_name, target in TEMPLATES.items():
        source = (templates / template_name).read_text(encoding="utf-8")
        out[target] = env.from_string(source).render(context)
    # Read back what a user would get: a template bug must fail here, not in 'lint' later.
    parse_config(yamlio.load(out[CONFIG_FILE], file=CONFIG_FILE))
    return out


def _write_files(root: Path, rendered: Mapping[str, str]) -> list[str]:
    """Write every file that does not exist yet; return the relative paths written."""
    written: list[str] = []
    for rel, text in [*rendered.items(), *((keep, "") for keep in KEEP_FILES)]:
        path = root / rel
        if path.exists():
            continue  # --force on a non-empty directory keeps the user's files
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(rel)
    return written


def _commit(root: Path, branch: str, paths: Sequence[str]) -> None:
    run_git(root, ["init", "-q", "-b", branch])
    if not paths:
        return
    identity = run_git(root, ["var", "GIT_COMMITTER_IDENT"], check=False)
    env = _FALLBACK_IDENTITY if identity.returncode != 0 else None
    run_git(root, ["add", "--", *paths])
    # Paths after '--' commit only what init wrote, never changes the user had staged.
    run_git(root, ["commit", "-q", "-m", INITIAL_COMMIT_MESSAGE, "--", *paths], env=env)
