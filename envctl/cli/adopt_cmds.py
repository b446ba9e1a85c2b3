"""``envctl adopt``, ``envctl pack`` and ``envctl kernel install|list|remove``.

Thin: each parses options, calls :mod:`envctl.adopt`, :mod:`envctl.pack` or
:mod:`envctl.kernel`, and renders the result; errors go to the one handler in
``envctl.cli.main``. (``envctl create --from-pack`` lives with ``create``.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from envctl.cli import common
from envctl.cli.consume_cmds import CatalogUrlOpt, FetchOpt, StoreOpt

JsonOpt = common.JsonOpt

ADOPT_EPILOG = """\
[bold]Examples[/bold]

  envctl adopt conda-lock.yml ranking/legacy:v1
  envctl adopt conda-lock.yml ranking/legacy:v1 --category main --owner ranking
  envctl adopt lock.yml ranking/legacy:v1 --map-channel https://mirror.corp/conda-forge=conda-forge
  envctl adopt conda-lock.yml ranking/legacy:v1 --no-resolve     # CI resolves it
"""

PACK_EPILOG = """\
[bold]Examples[/bold]

  envctl pack ranking/base:v3 -o base-v3.tar
  envctl pack ranking/base:v3 -o base-v3.tar --platform linux-64 --platform osx-arm64
  envctl create --from-pack base-v3.tar --prefix /opt/envs/base   # on the air-gapped machine
  envctl create ranking/base:v3 --from-pack base-v3.tar --name base   # and check it is v3
"""

KERNEL_HELP = """\
Jupyter kernels that run in locked environments.

[bold]Examples[/bold]

  envctl kernel install ranking/base:v3
  envctl kernel list
  envctl kernel remove envctl-ranking-base-v3
"""

KERNEL_EPILOG = """\
[bold]Examples[/bold]

  envctl kernel install ranking/base:v3
  envctl kernel install ranking/base:stable --name ranking --display-name "Ranking (stable)"
  envctl kernel install ranking/base:v3 --prefix /opt/jupyterhub   # a shared Jupyter
  envctl extend ranking/base:v3 --add ipykernel --name ranking/base:v3-nb   # no ipykernel?
"""

KERNEL_LIST_EPILOG = """\
[bold]Examples[/bold]

  envctl kernel list
  envctl kernel list --json | jq -r '.[].name'
  envctl kernel list --prefix /opt/jupyterhub
"""

KERNEL_REMOVE_EPILOG = """\
[bold]Examples[/bold]

  envctl kernel remove envctl-ranking-base-v3
  envctl kernel remove ranking --prefix /opt/jupyterhub
"""


def register(app: typer.Typer) -> None:
    app.command("adopt", epilog=ADOPT_EPILOG)(adopt_command)
    app.command("pack", epilog=PACK_EPILOG)(pack_command)
    kernel = typer.Typer(help=KERNEL_HELP, no_args_is_help=True, rich_markup_mode="rich")
    kernel.command("install", epilog=KERNEL_EPILOG)(kernel_install_command)
    kernel.command("list", epilog=KERNEL_LIST_EPILOG)(kernel_list_command)
    kernel.command("remove", epilog=KERNEL_REMOVE_EPILOG)(kernel_remove_command)
    app.add_typer(kernel, name="kernel")


def _catalog(ctx: typer.Context, catalog_url: str | None) -> Any:
    """What to pass as ``catalog=``: the git URL, the --catalog path, or None (defaults)."""
    return catalog_url or common.state(ctx).catalog


# -- adopt --------------------------------------------------------------------------------------


def adopt_command(
    ctx: typer.Context,
    lockfile: Annotated[Path, typer.Argument(metavar="LOCKFILE", show_default=False)],
    alias: Annotated[str, typer.Argument(metavar="NAME:TAG", show_default=False)],
    *,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", metavar="NAME",
                     help="Lock categories to take (repeat; main always). Default: main and "
                     "dev, as 'conda-lock install'.", show_default=False),
    ] = None,
    map_channel: Annotated[
        list[str] | None,
        typer.Option("--map-channel", metavar="URL=CHANNEL",
                     help="Packages under URL are in this catalog channel (a mirror); checked "
                     "against its repodata by sha256. Repeat.", show_default=False),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Also say this in the tag's description.")
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option("--owner", help="Owner of a new environment (repeat).", show_default=False),
    ] = None,
    exclude_newer: Annotated[
        str,
        typer.Option("--exclude-newer", metavar="TIME",
                     help="Cut-off for the trial resolve: an ISO time, 'now' or 'none' (CI "
                     "resolves with the commit time once merged)."),
    ] = "now",
    no_resolve: Annotated[
        bool, typer.Option("--no-resolve", help="Only write the tag; skip the trial resolve.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Take a conda-lock v1 file made elsewhere as a new immutable tag.

    Every package is checked: conda packages must come from the catalog's channels and
    match their repodata (an md5-only entry gets its sha256 from there); PyPI packages
    must be wheels with a sha256 from the catalog's index. The tag is written with every
    package pinned exactly (conda by sha256), then resolved locally to prove it gives the
    same packages. Commit the environment file: CI locks the tag like any other.
    """
    from rich.markup import escape

    from envctl.adopt import adopt
    from envctl.cli.options import now, parse_exclude_newer, resolved_by

    root = common.catalog_root(ctx)
    result = adopt(
        root, lockfile, alias,
        categories=category or None,
        channel_map=_channel_map(map_channel or []),
        description=description,
        owners=owner or [],
        resolve=not no_resolve,
        resolved_at=now(),
        resolved_by=resolved_by(root),
        exclude_newer=parse_exclude_newer(exclude_newer),
    )
    if json_:
        common.print_json(result.to_dict())
        return
    out = common.console()
    rel = os.path.relpath(result.file, root)
    out.print(f"adopted {escape(str(lockfile))} as [bold]{escape(result.alias)}[/bold] in "
              f"{escape(rel)} (channels: {escape(', '.join(result.channels)) or 'none'})")
    resolved = {p.platform: p for p in result.resolved.platforms} if result.resolved else {}
    for platform in result.platforms:
        ids = resolved[platform.platform].env_id if platform.platform in resolved else (
            f"full_id {platform.full_id}")
        out.print(f"  {platform.platform:<10} {len(platform.conda)} conda, "
                  f"{len(platform.pypi)} PyPI  {ids}")
    if result.filled:
        out.print(f"  sha256 filled in from the channel for {len(result.filled)} md5-only "
                  "package(s)")
    if result.dropped:
        out.print(f"  [dim]left out (other categories): {escape(', '.join(result.dropped))}[/dim]")
    if result.resolved is not None:
        out.print("  [dim]the trial resolve gives the adopted packages back exactly[/dim]")
    else:
        out.print("  [dim]not resolved here: conda packages are pinned by sha256, but whether "
                  "the index gives the same PyPI wheels is only known once CI (or 'envctl "
                  f"resolve {escape(result.alias)}') resolves it[/dim]")
    out.print("[dim]commit the environment file (not locks/): CI locks the tag once it is "
              "merged[/dim]")


def _channel_map(values: list[str]) -> dict[str, str]:
    from envctl.errors import EnvctlError

    out = {}
    for value in values:
        url, sep, name = value.rpartition("=")
        if not sep or "://" not in url or not name:
            raise EnvctlError(f"--map-channel {value!r} is not URL=CHANNEL",
                              rule="invalid-arguments",
                              fix="e.g. --map-channel https://mirror.corp/conda-forge=conda-forge")
        out[url] = name
    return out


# -- pack ---------------------------------------------------------------------------------------


def pack_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME:TAG | REQ_ID:FULL_ID", show_default=False)],
    *,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="The pack to write (a tar).",
                           show_default=False)
    ],
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", "-p", help="Platform to pack (repeat; default: this "
                     "machine's).", show_default=False),
    ] = None,
    store: StoreOpt = None,
    catalog_url: CatalogUrlOpt = None,
    fetch: FetchOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write a locked environment and every package file into one archive.

    For machines without network: copy the file there and run 'envctl create --from-pack
    FILE --prefix DIR'. Every package is verified by sha256 when packed and again when
    unpacked; the same tag and platforms always give the same bytes.
    """
    from rich.markup import escape

    from envctl.cli.lifecycle_cmds import human_size
    from envctl.pack import pack

    result = pack(ref, output, platforms=platform or [], catalog=_catalog(ctx, catalog_url),
                  store=store, fetch=fetch)
    if json_:
        common.print_json(result.to_dict())
        return
    out = common.console()
    manifest = result.manifest
    out.print(f"packed [bold]{escape(manifest.alias or ref)}[/bold] into "
              f"{escape(str(output))}: {len(manifest.packages)} package files, "
              f"{human_size(result.size)}")
    for name, ids in sorted(manifest.platforms.items()):
        out.print(f"  {name:<10} {ids.req_id}:{ids.full_id}")
    out.print(f"  sha256   {result.sha256}")


# -- kernel install -----------------------------------------------------------------------------


def kernel_install_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME:TAG | REQ_ID:FULL_ID", show_default=False)],
    *,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", metavar="KERNEL",
                     help="Kernel name (default: envctl-<name>-<tag>).", show_default=False),
    ] = None,
    display_name: Annotated[
        str | None,
        typer.Option("--display-name", help="Name shown in Jupyter (default: the alias and "
                     "short id).", show_default=False),
    ] = None,
    user: Annotated[
        bool, typer.Option("--user", help="Install for this user (the default).")
    ] = False,
    prefix: Annotated[
        Path | None,
        typer.Option("--prefix", metavar="DIR",
                     help="Install into DIR/share/jupyter/kernels (a shared Jupyter).",
                     show_default=False),
    ] = None,
    store: StoreOpt = None,
    catalog_url: CatalogUrlOpt = None,
    fetch: FetchOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a kernel of that name envctl did not write.")
    ] = False,
    without_ipykernel: Annotated[
        bool, typer.Option("--without-ipykernel", help="Register it even though the "
                           "environment has no ipykernel (Jupyter cannot start it until a "
                           "tag that has it).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Register a Jupyter kernel running in a locked environment (created if needed).

    The environment needs ipykernel for Jupyter to start the kernel: without it nothing is
    installed and the error says how to add it (--without-ipykernel registers it anyway).
    """
    from rich.markup import escape

    from envctl.errors import EnvctlError
    from envctl.kernel import install_kernel

    if user and prefix is not None:
        raise EnvctlError("give --user or --prefix, not both", rule="invalid-arguments",
                          fix="--user (the default) installs for you; --prefix DIR for a "
                          "Jupyter installed under DIR")
    result = install_kernel(ref, name=name, display_name=display_name, prefix=prefix,
                            catalog=_catalog(ctx, catalog_url), store=store, fetch=fetch,
                            force=force, without_ipykernel=without_ipykernel)
    err = common.err_console()
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if json_:
        common.print_json(result.to_dict())
        return
    out = common.console()
    verb = "replaced" if result.replaced else "installed"
    out.print(f"{verb} kernel [bold]{escape(result.name)}[/bold] "
              f"({escape(result.spec['display_name'])}) in {escape(str(result.directory))}")
    out.print(f"  id       {result.env_id}")
    out.print(f"  python   {escape(str(result.prefix))}/bin/python")


# -- kernel list / remove -----------------------------------------------------------------------

KernelPrefixOpt = Annotated[
    Path | None,
    typer.Option("--prefix", metavar="DIR",
                 help="The kernels under DIR/share/jupyter/kernels (a shared Jupyter) "
                 "instead of yours.", show_default=False),
]


def kernel_list_command(*, prefix: KernelPrefixOpt = None, json_: JsonOpt = False) -> None:
    """List the Jupyter kernels envctl installed: name, environment, id.

    A kernel whose environment has been removed since is marked 'missing env'.
    """
    from rich.markup import escape
    from rich.table import Table

    from envctl.kernel import kernels_dir, list_kernels

    kernels = list_kernels(prefix)
    if json_:
        common.print_json([k.to_dict() for k in kernels])
        return
    out = common.console()
    if not kernels:
        out.print(f"no kernels installed by envctl in {escape(str(kernels_dir(prefix)))}")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "ENVIRONMENT", "ID", "PLATFORM", "ENV"):
        table.add_column(column, overflow="fold")
    for k in kernels:
        short = "-"
        if k.env_id:
            req, _, full = k.env_id.partition(":")
            short = f"{req[:8]}:{full[:8]}"
        table.add_row(escape(k.name), escape(k.alias or "-"), short, k.platform or "-",
                      "ok" if k.env_exists else "[red]missing env[/red]")
    out.print(table)


def kernel_remove_command(
    name: Annotated[str, typer.Argument(metavar="KERNEL", show_default=False)],
    *,
    prefix: KernelPrefixOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also remove a kernel envctl did not write.")
    ] = False,
) -> None:
    """Remove a Jupyter kernel envctl installed (the environment it ran in stays)."""
    from rich.markup import escape

    from envctl.kernel import remove_kernel

    directory = remove_kernel(name, prefix=prefix, force=force)
    common.console().print(f"removed kernel [bold]{escape(directory.name)}[/bold] from "
                           f"{escape(str(directory.parent))}")
