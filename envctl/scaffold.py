"""``envctl init``: create a new catalog repository.

The files come from ``envctl/templates/*.j2`` (a sandboxed jinja2 environment:
the values are the user's own, but nothing in a template should be able to
reach Python; ``_*.j2`` are partials the others include). The generated
``catalog.yaml`` is read back with the same loader and model every other command
uses before anything is written, so ``init`` can never leave a catalog that
``lint`` would refuse.

The workflows install the envctl that ``--envctl-spec`` names (a pip spec the
catalog's owner controls: a VCS URL at a tag, a wheel URL) or, without it, the one
the repository variable ``ENVCTL_PIP_SPEC`` names, and fail with a clear error when
neither is set. Never the bare name ``envctl``: on PyPI that is an unrelated project,
and the resolve workflow runs it in the job that holds the CI signing key.
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

#: The repository variable the workflows read the envctl pip spec from, when init was
#: not given one.
ENVCTL_SPEC_VARIABLE = "ENVCTL_PIP_SPEC"
_SPEC_FIX = (
    "give a pip spec you control, e.g. --envctl-spec git+https://github.com/ORG/envctl@v0.1.0 "
    "or a wheel URL (PyPI's 'envctl' is an unrelated project)"
)

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


def check_envctl_spec(spec: str) -> str:
    """The ``--envctl-spec`` of ``init``: a pip spec for a URL or path, never a bare name.

    A spec without ``/`` is a name that pip looks up on an index (``envctl``,
    ``envctl==0.1``): on PyPI that name belongs to an unrelated project, so it is
    refused. The spec is written into the workflows as a YAML string and reaches the
    shell only as a quoted variable; line breaks and GitHub expressions are refused.
    """
    text = spec.strip()
    if not text or "/" not in text or text.startswith("-"):
        raise CatalogError(
            f"--envctl-spec {spec!r} is not a URL or path; pip would fetch it from an index",
            rule="invalid-option", fix=_SPEC_FIX,
        )
    if "${{" in text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise CatalogError(
            f"--envctl-spec {spec!r} holds a line break, control character or '${{{{'",
            rule="invalid-option", fix=_SPEC_FIX,
        )
    return text


def init_catalog(
    dest: str | os.PathLike[str],
    *,
    channels: Mapping[str, str] | None = None,
    platforms: Sequence[str] | None = None,
    store: str | None = None,
    pypi_index: str | None = None,
    signers: Mapping[str, str] | None = None,
    mutable_tags: Sequence[str] | None = None,
    envctl_spec: str | None = None,
    force: bool = False,
) -> Path:
    """Create a catalog git repository at ``dest`` with one initial commit; return its path.

    ``dest`` must be missing or empty unless ``force``; with ``force`` files that already
    exist there are kept as they are (only a second ``catalog.yaml`` is refused).
    ``envctl_spec`` is what the workflows ``pip install`` (see the module docstring).
    """
    root = Path(dest).expanduser().absolute()
    config = _config(channels, platforms, store, pypi_index, signers, mutable_tags)
    spec = None if envctl_spec is None else check_envctl_spec(envctl_spec)
    _check_destination(root, force=force)
    rendered = _render_all(config, spec)
    written = _write_files(root, rendered)
    _commit(root, config.branch, written)
    return root


def _config(
    channels: Mapping[str, str] | None,
    platforms: Sequence[str] | None,
    store: str | None,
    pypi_index: str | None,
    signers: Mapping[str, str] | None = None,
    mutable_tags: Sequence[str] | None = None,
) -> CatalogConfig:
    data: dict[str, object] = {
        "version": "1",
        "channels": dict(channels) if channels else dict(DEFAULT_CHANNELS),
        "platforms": list(dict.fromkeys(platforms or DEFAULT_PLATFORMS)),
        "mutable_tags": list(dict.fromkeys(mutable_tags or DEFAULT_MUTABLE_TAGS)),
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


def _load_template(name: str) -> str:
    text = (files("envctl") / "templates" / name).read_text(encoding="utf-8")
    # A partial (``_*.j2``) is included mid-file: its last newline is the includer's.
    return text.removesuffix("\n") if name.startswith("_") else text


def _render_all(config: CatalogConfig, envctl_spec: str | None = None) -> dict[str, str]:
    from jinja2 import FunctionLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FunctionLoader(_load_template),
        keep_trailing_newline=True, undefined=StrictUndefined, autoescape=False,
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
        "envctl_spec": envctl_spec,
        "spec_variable": ENVCTL_SPEC_VARIABLE,
    }
    out: dict[str, str] = {}
    for template_name, target in TEMPLATES.items():
        out[target] = env.get_template(template_name).render(context)
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
