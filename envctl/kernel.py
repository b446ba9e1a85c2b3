"""``envctl kernel install|list|remove``: Jupyter kernels that run in locked environments.

The environment is created first when needed (the shared cache by id, like ``envctl
run``), then a kernelspec is written: ``kernels/<name>/kernel.json`` under the Jupyter
data directory (``--user``, the default: ``$JUPYTER_DATA_DIR``, else the platform's
own place, as jupyter_core computes it) or under ``<prefix>/share/jupyter`` (``--prefix``,
as ``jupyter kernelspec install --prefix`` does).

The kernel starts the environment's own interpreter with ``-m ipykernel_launcher``, with
the variables of an activated environment (``CONDA_PREFIX``, its ``bin`` first on
``PATH`` — jupyter_client expands ``${PATH}`` when it launches — and the env's own
conda variables). If the environment has ``etc/conda/activate.d`` scripts, the command
is wrapped so they run first, as ``envctl run`` does.

A kernelspec is only a pointer: the environment must contain ``ipykernel`` for Jupyter
to start it. That is read from the lock before anything is created; without it the
install is refused with the fix (``envctl extend ... --add ipykernel``), unless
``without_ipykernel`` (then it is registered anyway, with a warning): a kernel Jupyter
lists but cannot start is worse than none. (A flag of its own, not ``force``: forcing
past the check must not also replace a kernel someone wrote by hand.)

``list_kernels`` reads back the kernels envctl wrote (their ``metadata.envctl``) and
``remove_kernel`` deletes one; a kernel someone else wrote is left alone unless forced.

Functions return values and raise :class:`~envctl.errors.EnvctlError`; nothing prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.errors import EnvctlError, NotFoundError
from envctl.fsutil import replace_dir

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.lookup import ResolvedRef
    from envctl.materialize import Reporter
    from envctl.store.base import Store

KERNEL_FILE = "kernel.json"
#: jupyter_client's rule for kernel names.
_KERNEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")


@dataclass(frozen=True)
class KernelResult:
    name: str
    directory: Path
    spec: dict[str, Any]
    prefix: Path  # the environment the kernel runs in
    alias: str | None
    env_id: str
    created_env: bool
    replaced: bool = False
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "directory": str(self.directory),
            "display_name": self.spec["display_name"],
            "argv": self.spec["argv"],
            "prefix": str(self.prefix),
            "alias": self.alias,
            "id": self.env_id,
            "created_env": self.created_env,
            "replaced": self.replaced,
            "warnings": list(self.warnings),
        }


# -- where kernels go ---------------------------------------------------------------------------


def jupyter_data_dir() -> Path:
    """jupyter_core's user data directory, computed the same way without importing it."""
    explicit = os.environ.get("JUPYTER_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "jupyter" if appdata else home / ".jupyter" / "data"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "jupyter"


def kernels_dir(prefix: str | os.PathLike[str] | None = None) -> Path:
    """``<prefix>/share/jupyter/kernels`` with a prefix, else the user's kernels folder."""
    if prefix is not None:
        return Path(os.path.abspath(os.path.expanduser(os.fspath(prefix)))) / "share" / \
            "jupyter" / "kernels"
    return jupyter_data_dir() / "kernels"


def default_kernel_name(alias: str | None, full_id: str) -> str:
    """``envctl-team-app-v1`` (an id: ``envctl-<full_id[:12]>``): valid and readable."""
    base = alias or full_id[:12]
    return "envctl-" + re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-")


def check_kernel_name(name: str) -> str:
    if not _KERNEL_NAME.fullmatch(name) or name in (".", ".."):
        raise EnvctlError(
            f"{name!r} cannot name a Jupyter kernel",
            rule="invalid-kernel-name",
            fix="use letters, digits and ._- (Jupyter's rule for kernel names)",
        )
    return name.lower()  # Jupyter lower-cases kernel names when it looks them up


# -- the kernelspec -----------------------------------------------------------------------------


def has_ipykernel(resolved: ResolvedRef) -> bool:
    return any(p.name == "ipykernel" for p in resolved.lock.for_platform(resolved.platform))


def kernel_spec(resolved: ResolvedRef, prefix: Path, *, display_name: str | None = None,
                ) -> dict[str, Any]:
    """The ``kernel.json`` content for the environment at ``prefix``."""
    from envctl.activate import activation_command

    windows = resolved.platform.startswith("win-")
    python = prefix / ("python.exe" if windows else "bin/python")
    argv = activation_command(prefix, [str(python), "-m", "ipykernel_launcher", "-f",
                                       "{connection_file}"])
    short = f"{resolved.req_id[:8]}:{resolved.full_id[:8]}"
    bindir = prefix / ("Scripts" if windows else "bin")
    env = {
        "CONDA_PREFIX": str(prefix),
        "CONDA_DEFAULT_ENV": str(prefix),
        # jupyter_client substitutes ${PATH} from the server's environment at launch.
        "PATH": f"{bindir}{os.pathsep}${{PATH}}",
        **_conda_env_vars(prefix),
    }
    return {
        "argv": argv,
        "display_name": display_name or f"{resolved.alias or 'envctl'} ({short})",
        "language": "python",
        "interrupt_mode": "signal",
        "env": env,
        "metadata": {
            "debugger": True,
            "envctl": {
                "alias": resolved.alias,
                "id": resolved.env_id,
                "platform": resolved.platform,
                "prefix": str(prefix),
            },
        },
    }


def _conda_env_vars(prefix: Path) -> dict[str, str]:
    """The env's own variables (``conda env config vars``), as activation sets them."""
    from envctl.activate import activation_env

    base = {"PATH": ""}
    env = activation_env(prefix, base)
    skip = {"PATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV"}
    return {k: v for k, v in sorted(env.items()) if k not in skip and k not in base}


def write_kernelspec(directory: Path, spec: dict[str, Any], *, force: bool = False) -> bool:
    """Write ``directory/kernel.json`` atomically; True when it replaced a kernel.

    A kernel envctl wrote before is replaced; anything else only with ``force`` (it may
    be a kernel someone made by hand).
    """
    replaced = directory.exists()
    if replaced and not force and not _written_by_envctl(directory):
        raise EnvctlError(
            f"a kernel {directory.name!r} that envctl did not write exists at {directory}",
            file=str(directory),
            rule="kernel-exists",
            fix="choose another --name, or pass --force to replace it",
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (tmp / KERNEL_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        replace_dir(tmp, directory)  # the name always holds a complete kernelspec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return replaced


def _written_by_envctl(directory: Path) -> bool:
    try:
        data = json.loads((directory / KERNEL_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "envctl" in (data.get("metadata") or {})


# -- the command --------------------------------------------------------------------------------


def install_kernel(
    ref: str,
    *,
    name: str | None = None,
    display_name: str | None = None,
    prefix: str | os.PathLike[str] | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    fetch: bool | None = None,
    force: bool = False,
    without_ipykernel: bool = False,
    reporter: Reporter | None = None,
) -> KernelResult:
    """Create ``ref``'s environment if needed and register a kernel for it (module doc)."""
    from envctl import api

    resolved = api.resolve_ref(ref, catalog=catalog, store=store, fetch=fetch)
    kernel = check_kernel_name(name or default_kernel_name(resolved.alias, resolved.full_id))
    warnings = []
    if not has_ipykernel(resolved):
        what = resolved.alias or resolved.env_id
        base = resolved.alias.rsplit(":", 1)[0] if resolved.alias else "NAME"
        extend = f"envctl extend {what} --add ipykernel --name {base}:<new tag>"
        if not without_ipykernel:
            raise EnvctlError(
                f"{what} does not contain ipykernel, so Jupyter could list the kernel but "
                "not start it",
                rule="no-ipykernel",
                fix=f"add it in a new tag ({extend}) and install the kernel for that tag, "
                "or pass --without-ipykernel to register it anyway",
            )
        warnings.append(f"{what} does not contain ipykernel, so Jupyter lists the kernel but "
                        f"cannot start it; add it in a new tag ({extend}) and install the "
                        "kernel for that tag")
    created = api.install(resolved, reporter=reporter)
    spec = kernel_spec(resolved, created.prefix, display_name=display_name)
    directory = kernels_dir(prefix) / kernel
    replaced = write_kernelspec(directory, spec, force=force)
    return KernelResult(kernel, directory, spec, created.prefix, resolved.alias,
                        resolved.env_id, created_env=not created.reused, replaced=replaced,
                        warnings=tuple(warnings))


# -- listing and removing -----------------------------------------------------------------------


@dataclass(frozen=True)
class KernelInfo:
    """A kernel envctl wrote, read back from its ``kernel.json``."""

    name: str
    directory: Path
    display_name: str
    alias: str | None
    env_id: str | None
    platform: str | None
    prefix: Path | None  # the environment it runs in
    env_exists: bool  # False when that environment was removed since

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "directory": str(self.directory),
            "display_name": self.display_name,
            "alias": self.alias,
            "id": self.env_id,
            "platform": self.platform,
            "prefix": str(self.prefix) if self.prefix else None,
            "env_exists": self.env_exists,
        }


def list_kernels(prefix: str | os.PathLike[str] | None = None) -> list[KernelInfo]:
    """The kernels envctl wrote in the user's kernels folder (or ``<prefix>/share/jupyter/
    kernels``), by name. Kernels others wrote are not listed."""
    folder = kernels_dir(prefix)
    if not folder.is_dir():
        return []
    found = []
    for directory in sorted(folder.iterdir()):
        info = _read_kernel(directory)
        if info is not None:
            found.append(info)
    return found


def _read_kernel(directory: Path) -> KernelInfo | None:
    if directory.name.startswith(".") or not directory.is_dir():
        return None  # a temp folder of an install in progress
    try:
        data = json.loads((directory / KERNEL_FILE).read_text())
    except (OSError, ValueError):
        return None
    meta = data.get("metadata") if isinstance(data, dict) else None
    ours = meta.get("envctl") if isinstance(meta, dict) else None
    if not isinstance(ours, dict):
        return None
    env_prefix = Path(ours["prefix"]) if isinstance(ours.get("prefix"), str) else None
    return KernelInfo(
        name=directory.name,
        directory=directory,
        display_name=str(data.get("display_name") or directory.name),
        alias=ours.get("alias") if isinstance(ours.get("alias"), str) else None,
        env_id=ours.get("id") if isinstance(ours.get("id"), str) else None,
        platform=ours.get("platform") if isinstance(ours.get("platform"), str) else None,
        prefix=env_prefix,
        env_exists=env_prefix is not None and (env_prefix / "conda-meta").is_dir(),
    )


def remove_kernel(name: str, *, prefix: str | os.PathLike[str] | None = None,
                  force: bool = False) -> Path:
    """Delete the kernel ``name`` (its folder); the directory it was in. The environment
    it ran in stays (``envctl gc`` and the cache own that)."""
    folder = kernels_dir(prefix)
    directory = folder / check_kernel_name(name)
    if not (directory / KERNEL_FILE).is_file():
        known = [k.name for k in list_kernels(prefix)]
        raise NotFoundError(
            f"no kernel {name!r} in {folder}",
            file=str(directory),
            fix=f"envctl's kernels there: {', '.join(known)}" if known else
            "'envctl kernel list' shows the kernels envctl installed (--prefix DIR for a "
            "shared Jupyter)",
        )
    if not force and _read_kernel(directory) is None:
        raise EnvctlError(
            f"the kernel {directory.name!r} at {directory} was not written by envctl",
            file=str(directory),
            rule="foreign-kernel",
            fix="remove it with 'jupyter kernelspec remove', or pass --force",
        )
    shutil.rmtree(directory)
    return directory
