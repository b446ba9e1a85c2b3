"""Commands that consume environments: create, envs, run, info, extend, export.

Thin: each parses options, calls :mod:`envctl.api` (or the module behind it) and
renders the result; errors go to the one handler in ``envctl.cli.main``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from envctl.cli import common

if TYPE_CHECKING:
    from envctl.lookup import ResolvedRef
    from envctl.materialize import MaterializeResult, PrefixRecord

CREATE_EPILOG = """\
[bold]Examples[/bold]

  envctl create ranking/base:v3 --name ranking-v3
  envctl create ranking/base:stable --prefix ./env          # prints the id to pin
  envctl create 3de1...:3e61... --prefix ./env              # exactly that environment
  envctl create --pathspec TrainFlow/456/train --name train-456
  envctl create --from-pack base-v3.tar --prefix ./env      # offline, from 'envctl pack'
"""

ENVS_EPILOG = """\
[bold]Examples[/bold]

  envctl envs
  envctl envs --full                # whole req_id:full_id ids, to pin or 'envctl show'
  envctl envs --all --json | jq '.[].id'
"""

RUN_EPILOG = """\
[bold]Examples[/bold]

  envctl run ranking/base:v3 -- python -c "import numpy"
  envctl run --platform linux-64 ranking/base:stable -- python -V   # options before NAME
  envctl run --name ranking-v3 -- python -V        # an environment 'create' made
  envctl run --prefix ./env -- pytest -q

A command that is not in the environment exits 127; one that is not executable, 126.
"""

INFO_EPILOG = """\
[bold]Examples[/bold]

  envctl info --prefix ./env
  envctl info --name ranking-v3 --json
  envctl info --pathspec TrainFlow/456/train     # the environment a run's step used
"""

EXTEND_EPILOG = """\
[bold]Examples[/bold]

  envctl extend ranking/base:v3 --add scikit-learn --name ranking/sk:v1
  envctl extend ranking/base:v3 --add ipykernel --name ranking/base:v3-nb
  envctl extend ranking/base:v3 --pypi rich==13.7.1 --name ranking/cli:v1 --no-resolve
"""

EXPORT_EPILOG = """\
[bold]Examples[/bold]

  envctl export ranking/base:v3 --format environment.yml -o environment.yml
  envctl export ranking/base:v3 --format explicit --platform linux-64 > explicit.txt
  envctl export ranking/base:v3 --format requirements.txt
  envctl export 3de1...:3e61... --format pixi.toml -o pixi.toml
"""

JsonOpt = common.JsonOpt
PlatformOpt = Annotated[
    str | None,
    typer.Option("--platform", "-p", help="Target platform (default: this machine's).",
                 show_default=False),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="URL",
                 help="Artifact store to fetch from (default: $ENVCTL_STORE, catalog.yaml).",
                 show_default=False),
]
CatalogUrlOpt = Annotated[
    str | None,
    typer.Option("--catalog-url", metavar="GIT_URL",
                 help="Read the catalog from this git URL (URL#REV for a branch or tag).",
                 show_default=False),
]
FetchOpt = Annotated[
    bool | None,
    typer.Option("--fetch/--no-fetch",
                 help="Follow the remote branch tip for mutable tags (default: on for a git "
                 "URL, off for a work tree).", show_default=False),
]
PathspecOpt = Annotated[
    str | None,
    typer.Option("--pathspec", metavar="FLOW/RUN/STEP",
                 help="The environment a run's step used.", show_default=False),
]
PrefixOpt = Annotated[
    Path | None,
    typer.Option("--prefix", metavar="DIR", help="Environment directory.", show_default=False),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", "-n", metavar="LOCAL",
                 help="Named local environment (under $ENVCTL_HOME/envs).", show_default=False),
]


def register(app: typer.Typer) -> None:
    app.command("create", epilog=CREATE_EPILOG)(create_command)
    app.command("envs", epilog=ENVS_EPILOG)(envs_command)
    app.command(
        "run",
        epilog=RUN_EPILOG,
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )(run_command)
    app.command("info", epilog=INFO_EPILOG)(info_command)
    app.command("extend", epilog=EXTEND_EPILOG)(extend_command)
    app.command("export", epilog=EXPORT_EPILOG)(export_command)


def _catalog(ctx: typer.Context, catalog_url: str | None) -> Any:
    """What to pass as ``catalog=``: the git URL, the --catalog path, or None (defaults)."""
    return catalog_url or common.state(ctx).catalog


def _short(env_id: str) -> str:
    req, _, full = env_id.partition(":")
    return f"{req[:8]}:{full[:8]}"


# -- create -----------------------------------------------------------------------------------


def create_command(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(metavar="[NAME[:TAG] | REQ_ID:FULL_ID]", show_default=False),
    ] = None,
    *,
    pathspec: PathspecOpt = None,
    prefix: PrefixOpt = None,
    name: NameOpt = None,
    platform: PlatformOpt = None,
    store: StoreOpt = None,
    catalog_url: CatalogUrlOpt = None,
    fetch: FetchOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace another environment at the target.")
    ] = False,
    from_pack: Annotated[
        Path | None,
        typer.Option("--from-pack", metavar="FILE",
                     help="Install offline from a file 'envctl pack' wrote (a NAME:TAG or id "
                     "given too must be what it holds).", show_default=False),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a locked environment, verifying every package file's sha256.

    From the artifact store when it has the packages, else from the lock's URLs. Goes to
    --prefix DIR, to a named local environment (--name), or else to the shared cache of
    environments by id. The resolved REQ_ID:FULL_ID is printed: use it to pin a run.
    """
    from envctl import api

    if from_pack is not None:
        _check_from_pack(pathspec=pathspec, store=store, catalog_url=catalog_url, fetch=fetch)
        from envctl.pack import create_from_pack

        resolved, result = create_from_pack(from_pack, prefix=prefix, name=name,
                                            platform=platform, expect=ref, force=force)
    else:
        resolved = api.resolve_ref(ref, catalog=_catalog(ctx, catalog_url), store=store,
                                   platform=platform, fetch=fetch, pathspec=pathspec)
        result = api.install(resolved, prefix=prefix, name=name, force=force)
    if json_:
        common.print_json({**resolved.to_dict(), **result.to_dict()})
        return
    _print_created(resolved, result)


def _check_from_pack(**given: object) -> None:
    """--from-pack installs what the file holds, offline: lookup options do not apply."""
    from envctl.errors import EnvctlError

    extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
    if extra:
        raise EnvctlError(f"--from-pack takes no {', '.join(extra)}", rule="invalid-arguments",
                          fix="envctl create [NAME:TAG] --from-pack FILE (--prefix DIR | --name "
                          "LOCAL) [--platform P]")


def _print_created(resolved: ResolvedRef, result: MaterializeResult) -> None:
    from rich.markup import escape

    out = common.console()
    what = escape(resolved.alias or resolved.env_id)
    verb = "already present" if result.reused else "created"
    out.print(f"{verb}: [bold]{what}[/bold] ({resolved.platform}) at {escape(str(result.prefix))}")
    out.print(f"  id       {resolved.env_id}")
    record = result.record
    line = f"  packages {record.conda_packages} conda, {record.pypi_packages} PyPI"
    if not result.reused:
        cached = result.sources.get("cache", 0)
        line += f"; {result.downloaded} fetched, {cached} from the package cache"
    out.print(line)
    if resolved.mutable:
        out.print(f"  [dim]{escape(resolved.asked)} is a mutable tag; pin this environment with "
                  f"{resolved.env_id}[/dim]")


# -- envs ---------------------------------------------------------------------------------------


def envs_command(
    *,
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="Also list the cache of environments by id.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Print whole REQ_ID:FULL_ID ids (the short ones "
                           "only identify an environment by eye).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """List the local environments (named ones; --all adds the cache by id).

    The ID column is shortened to 8+8 hex digits; a reference needs the whole
    REQ_ID:FULL_ID, which --full and --json print.
    """
    from rich.markup import escape
    from rich.table import Table

    from envctl.local_envs import list_envs

    envs = list_envs(include_cached=all_)
    if json_:
        common.print_json([e.to_dict() for e in envs])
        return
    out = common.console()
    if not envs:
        out.print("no local environments; create one with 'envctl create NAME:TAG --name LOCAL'")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "KIND", "ALIAS", "ID", "PLATFORM", "PREFIX"):
        table.add_column(column)
    for env in envs:
        rec = env.record
        table.add_row(
            escape(env.name[:12] + "…" if env.kind == "by-id" else env.name),
            env.kind,
            escape(rec.alias or "-") if rec else f"[red]{escape(env.problem or '')}[/red]",
            (rec.env_id if full else _short(rec.env_id)) if rec else "-",
            rec.platform if rec else "-",
            escape(str(env.prefix)),
        )
    if full:  # whole ids are there to be copied: never cut or folded, however wide
        out.width = max(out.width, 4096)
    out.print(table)


# -- run ----------------------------------------------------------------------------------------


def run_command(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME[:TAG]] -- CMD...", show_default=False),
    ] = None,
    *,
    name: NameOpt = None,
    prefix: PrefixOpt = None,
    platform: PlatformOpt = None,
    store: StoreOpt = None,
    catalog_url: CatalogUrlOpt = None,
    fetch: FetchOpt = None,
) -> None:
    """Run a command inside an environment, activated (PATH, CONDA_PREFIX, activate.d).

    NAME[:TAG] or REQ_ID:FULL_ID is created first if needed (in the shared cache by id,
    or at --name/--prefix). Without it, --name/--prefix name an existing environment.
    Options go before NAME; everything after '--' is the command. Exits with its code.
    """
    from envctl import api
    from envctl.activate import run_activated
    from envctl.errors import EnvctlError

    ref, command = _split_run_args(list(args or []), local=name is not None or prefix is not None)
    if ref is None and name is None and prefix is None:
        raise EnvctlError("name the environment to run in", rule="invalid-arguments",
                          fix="envctl run NAME:TAG -- CMD, or envctl run --name LOCAL -- CMD")
    if ref is None:
        from envctl.local_envs import named_prefix

        api.info(prefix=prefix, name=name)  # refuses anything but a complete environment
        path = prefix.absolute() if prefix is not None else named_prefix(name or "")
    else:
        resolved = api.resolve_ref(ref, catalog=_catalog(ctx, catalog_url), store=store,
                                   platform=platform, fetch=fetch)
        path = api.install(resolved, prefix=prefix, name=name).prefix
    # 127 / 126 when the command is missing / not executable, as a shell answers.
    raise typer.Exit(run_activated(path, command))


def _split_run_args(args: list[str], *, local: bool) -> tuple[str | None, list[str]]:
    """(ref, command) from what click left: ``REF -- CMD``, ``-- CMD`` (the '--' is eaten
    when it comes first), or ``REF CMD`` / ``CMD`` without '--'."""
    from envctl.errors import EnvctlError

    if "--" in args:
        at = args.index("--")
        head, command = args[:at], args[at + 1 :]
        if len(head) > 1:
            raise EnvctlError(
                f"unexpected arguments before '--': {' '.join(head[1:])}",
                rule="invalid-arguments",
                fix="put options before NAME: envctl run --platform P NAME:TAG -- CMD",
            )
        ref = head[0] if head else None
    elif local:
        ref, command = None, args
    else:
        ref, command = (args[0] if args else None), args[1:]
    if not command:
        raise EnvctlError("no command to run", rule="invalid-arguments",
                          fix="put the command after '--': envctl run NAME:TAG -- python -V")
    return ref, command


# -- info ---------------------------------------------------------------------------------------


def info_command(
    ctx: typer.Context,
    *,
    prefix: PrefixOpt = None,
    name: NameOpt = None,
    pathspec: PathspecOpt = None,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Tell which environment a directory, local name or run step holds: alias and ids."""
    from envctl import api
    from envctl.errors import EnvctlError

    if sum(x is not None for x in (prefix, name, pathspec)) != 1:
        raise EnvctlError("give exactly one of --prefix, --name and --pathspec",
                          rule="invalid-arguments", fix="e.g. envctl info --prefix ./env")
    if pathspec is not None:
        import contextlib

        from envctl.runs import lookup_run

        catalog = None
        with contextlib.suppress(EnvctlError):  # the store or local registry may still know it
            catalog = api.open_catalog(common.state(ctx).catalog)
        run = lookup_run(pathspec, store=api.open_store(store, catalog=catalog))
        data = run.model_dump(mode="json")
        data["id"] = run.env_id
    else:
        from envctl.local_envs import named_prefix

        record: PrefixRecord = api.info(prefix=prefix, name=name)
        data = {**record.model_dump(mode="json"), "id": record.env_id}
        data["prefix"] = str(prefix.absolute() if prefix else named_prefix(name or ""))
    if json_:
        common.print_json(data)
        return
    out = common.console()
    for key in ("prefix", "pathspec", "alias", "asked", "id", "platform", "created_at",
                "recorded_at"):
        if data.get(key):
            out.print(f"{key:<11} {data[key]}", markup=False)


# -- extend -------------------------------------------------------------------------------------


def extend_command(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(metavar="BASE:TAG", show_default=False)],
    *,
    new: Annotated[
        str, typer.Option("--name", "-n", metavar="NEW:TAG", help="The tag to create.",
                          show_default=False)
    ],
    add: Annotated[
        list[str] | None,
        typer.Option("--add", metavar="SPEC", help="Conda requirement to add (repeat).",
                     show_default=False),
    ] = None,
    pypi: Annotated[
        list[str] | None,
        typer.Option("--pypi", metavar="REQ", help="PyPI requirement to add (repeat).",
                     show_default=False),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option("--owner", help="Owner of a new environment (repeat).", show_default=False),
    ] = None,
    exclude_newer: Annotated[
        str,
        typer.Option("--exclude-newer", metavar="TIME",
                     help="Cut-off for the added packages: an ISO time, 'now' or 'none' "
                     "(CI re-resolves with the commit time once merged)."),
    ] = "now",
    no_resolve: Annotated[
        bool, typer.Option("--no-resolve", help="Only write the tag; CI resolves it.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Create NEW:TAG from BASE:TAG plus packages; the base's lock is pinned exactly.

    Writes an 'extends:' tag into the catalog work tree and resolves it. The base is not
    changed. If an addition conflicts with the base, the tag is not written and the
    error says which package and what to do.
    """
    from rich.markup import escape

    from envctl.cli.options import now, parse_exclude_newer, resolved_by
    from envctl.errors import EnvctlError
    from envctl.extend import extend

    if not add and not pypi:
        raise EnvctlError("nothing to add", rule="empty-tag",
                          fix="give --add SPEC and/or --pypi REQ")
    root = common.catalog_root(ctx)
    cutoff = parse_exclude_newer(exclude_newer)
    result = extend(
        root, base, new, add=add or [], pypi=pypi or [], description=description,
        owners=owner or [], resolve=not no_resolve,
        resolved_at=now(), resolved_by=resolved_by(root),
        exclude_newer=cutoff,
    )
    if json_:
        common.print_json(result.to_dict())
        return
    out = common.console()
    rel = os.path.relpath(result.file, root)
    out.print(f"wrote [bold]{escape(result.new)}[/bold] extending {escape(result.base)} "
              f"in {escape(rel)}")
    if result.resolved is not None:
        for platform in result.resolved.platforms:
            out.print(f"  {platform.platform:<10} {platform.env_id}")
        out.print(f"  [dim]{escape(result.resolved.message)}[/dim]")
    out.print("[dim]commit the environment file; CI locks the tag once it is merged[/dim]")


# -- export -------------------------------------------------------------------------------------


def export_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME:TAG | REQ_ID:FULL_ID", show_default=False)],
    *,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f",
                     help="conda-lock, explicit, environment.yml, requirements.txt, pixi.toml."),
    ] = "conda-lock",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout.",
                     show_default=False),
    ] = None,
    platform: PlatformOpt = None,
    store: StoreOpt = None,
    catalog_url: CatalogUrlOpt = None,
    fetch: FetchOpt = None,
) -> None:
    """Export a locked environment for another tool, pinned exactly."""
    import sys

    from envctl import api
    from envctl.export import export, normalize_format

    fmt = normalize_format(fmt)
    resolved = api.resolve_ref(ref, catalog=_catalog(ctx, catalog_url), store=store,
                               platform=platform, fetch=fetch, any_platform=True)
    name = (resolved.alias or resolved.full_id).replace("/", "-").replace(":", "-")
    data = export(resolved.lock, resolved.lock_bytes, fmt, platform=resolved.platform, name=name)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    from envctl.fsutil import atomic_write

    atomic_write(output, data)
    common.err_console().print(f"wrote {output} ({fmt}, {resolved.platform})", markup=False)
