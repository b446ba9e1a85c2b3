"""Commands that change a catalog: ``init``, ``new``, ``tag``, ``bump``.

Each one parses options, calls :mod:`envctl.scaffold` or :mod:`envctl.edit` and prints
the result; errors are raised and reported by the one handler in ``main.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envctl.cli import common

INIT_EPILOG = """\
[bold]Examples[/bold]

  envctl init my-catalog
  envctl init my-catalog --channel conda-forge=https://conda.anaconda.org/conda-forge \\
      --platform linux-64 --platform osx-arm64 --store s3://bucket/envctl
  envctl init . --force            # add a catalog to an existing, non-empty folder
  envctl init my-catalog --signer ci@example.com=~/.ssh/envctl_ci.pub   # CI signs locks
  envctl init my-catalog --envctl-spec git+https://github.com/acme/envctl@v0.1.0
  envctl init my-catalog --mutable-tag stable --mutable-tag nightly
"""

NEW_EPILOG = """\
[bold]Examples[/bold]

  envctl new ranking/base:v1 --dep python=3.11 --dep "numpy>=1.26" \\
      --description "Ranking team base" --owner ranking
  envctl new ranking/base:v2 --dep python=3.12 --pypi itsdangerous==2.1.2
  envctl new ranking/gpu:v1 --from environment.yml --platform linux-64
"""

TAG_EPILOG = """\
[bold]Examples[/bold]

  envctl tag ranking/base:stable --points-to v2
  envctl tag ranking/base:candidate --points-to v3 --json
"""

BUMP_EPILOG = """\
[bold]Examples[/bold]

  envctl bump ranking/base:v1 --to v2 --dep "numpy>=2" --drop pandas
  envctl bump ranking/base:stable --to v3 --pypi requests==2.32.3 --move stable
"""


def escape(text: str) -> str:
    from rich.markup import escape as _escape  # lazy: keeps 'envctl --help' start-up light

    return _escape(text)


def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new catalog (created if missing).")
    ],
    *,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            help="A channel as NAME=URL; repeat for several, in priority order "
            "(default: conda-forge).",
            show_default=False,
        ),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Default platform; repeat (default: linux-64).",
                     show_default=False),
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="Artifact store URL or folder.")
    ] = None,
    pypi_index: Annotated[
        str | None, typer.Option("--pypi-index", help="PyPI index URL for 'pypi:' parts.")
    ] = None,
    signer: Annotated[
        list[str] | None,
        typer.Option(
            "--signer",
            help="A key allowed to sign lock commits, as PRINCIPAL=PUBLIC_KEY_FILE; repeat.",
            show_default=False,
        ),
    ] = None,
    mutable_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--mutable-tag",
            help="A mutable tag name or pattern; repeat (default: latest, candidate, stable).",
            show_default=False,
        ),
    ] = None,
    envctl_spec: Annotated[
        str | None,
        typer.Option(
            "--envctl-spec",
            metavar="PIP_SPEC",
            help="What the CI workflows pip install: a URL you control, e.g. "
            "git+https://github.com/ORG/envctl@v0.1.0 or a wheel URL (default: the "
            "repository variable ENVCTL_PIP_SPEC; never PyPI's unrelated 'envctl').",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a non-empty folder (its files are kept).")
    ] = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Create a new catalog: a git repository with catalog.yaml, envs/, locks/, a README
    and CI workflows, in one initial commit."""
    from envctl.scaffold import init_catalog, parse_channel_options, parse_signer_option

    root = init_catalog(
        directory,
        channels=parse_channel_options(channel or []) or None,
        platforms=platform or None,
        store=store,
        pypi_index=pypi_index,
        signers=dict(parse_signer_option(text) for text in signer or []),
        mutable_tags=mutable_tag or None,
        envctl_spec=envctl_spec,
        force=force,
    )
    if json_out:
        common.print_json({"catalog": str(root)})
        return
    out = common.console()
    out.print(f"Created catalog at [bold]{escape(str(root))}[/bold] (git branch main, 1 commit)")
    out.print(f"next: envctl --catalog {escape(str(root))} new team/env:v1 --dep python=3.11")
    if envctl_spec is None:
        out.print("CI: set the repository variable ENVCTL_PIP_SPEC to the envctl the "
                  "workflows install (e.g. git+https://github.com/ORG/envctl@v0.1.0), "
                  "or pass --envctl-spec")


def new(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(metavar="NAME:TAG", help="Environment and new tag.")],
    *,
    dep: Annotated[
        list[str] | None,
        typer.Option("--dep", "-d", help="Conda match spec, e.g. 'numpy>=1.26'; repeat.",
                     show_default=False),
    ] = None,
    pypi: Annotated[
        list[str] | None,
        typer.Option("--pypi", help="PyPI requirement, e.g. 'requests==2.32.3'; repeat.",
                     show_default=False),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Platform for this tag (default: the catalog's); "
                     "repeat.", show_default=False),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="Logical channel from catalog.yaml (default: the "
                     "catalog's); repeat, in priority order.", show_default=False),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="Start from a conda environment.yml (its pip: list "
                     "becomes pypi).", show_default=False),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option("--description", help="What the environment is for (a new env), or "
                     "this tag's note (an existing env)."),
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option("--owner", help="Owner of a new environment; repeat.", show_default=False),
    ] = None,
    json_out: common.JsonOpt = False,
) -> None:
    """Add a tag to an environment, creating the environment's file if it is new."""
    from envctl.edit import new_tag

    root = common.catalog_root(ctx)
    path = new_tag(
        root,
        alias,
        deps=dep or [],
        pypi=pypi or [],
        platforms=platform or [],
        channels=channel or [],
        description=description,
        owners=owner or [],
        from_file=from_file,
    )
    rel = path.relative_to(root).as_posix()
    if json_out:
        common.print_json({"alias": alias, "file": rel})
        return
    out = common.console()
    out.print(f"Added [bold]{escape(alias)}[/bold] to {escape(rel)}")
    out.print("next: commit it and open a pull request; CI resolves and locks it")


def tag(
    ctx: typer.Context,
    alias: Annotated[
        str, typer.Argument(metavar="NAME:TAG", help="The pointer: a mutable tag like stable.")
    ],
    *,
    points_to: Annotated[
        str,
        typer.Option("--points-to", help="Immutable tag of the same environment to point at.",
                     show_default=False),
    ],
    json_out: common.JsonOpt = False,
) -> None:
    """Create or move a pointer (a mutable tag) to an immutable tag of the same environment."""
    from envctl.edit import set_pointer

    root = common.catalog_root(ctx)
    old, new_target = set_pointer(root, alias, points_to)
    if json_out:
        common.print_json({"alias": alias, "from": old, "to": new_target})
        return
    out = common.console()
    if old == new_target:
        out.print(f"{escape(alias)} already points to {escape(new_target)}; nothing changed")
    else:
        out.print(f"{escape(alias)}: {escape(old or '(new)')} → {escape(new_target)}")


def bump(
    ctx: typer.Context,
    alias: Annotated[
        str, typer.Argument(metavar="NAME:FROM", help="Tag to start from (a pointer is followed).")
    ],
    *,
    to: Annotated[
        str, typer.Option("--to", help="The new immutable tag.", show_default=False)
    ],
    dep: Annotated[
        list[str] | None,
        typer.Option("--dep", "-d", help="Conda spec; replaces the same package or is added; "
                     "repeat.", show_default=False),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option("--drop", help="Package name to remove (conda or PyPI); repeat.",
                     show_default=False),
    ] = None,
    pypi: Annotated[
        list[str] | None,
        typer.Option("--pypi", help="PyPI requirement; replaces the same package or is added; "
                     "repeat.", show_default=False),
    ] = None,
    move: Annotated[
        list[str] | None,
        typer.Option("--move", help="Pointer to move to the new tag, e.g. stable; repeat.",
                     show_default=False),
    ] = None,
    json_out: common.JsonOpt = False,
) -> None:
    """Add a new immutable tag that copies an existing one with changes, and optionally
    move pointers to it."""
    from envctl.edit import bump as bump_tag

    root = common.catalog_root(ctx)
    result = bump_tag(
        root, alias, to, deps=dep or [], drop=drop or [], pypi=pypi or [], move=move or []
    )
    rel = result.file.relative_to(root).as_posix()
    if json_out:
        common.print_json({**result.to_dict(), "file": rel})
        return
    out = common.console()
    out.print(f"Added [bold]{escape(result.new)}[/bold] from {escape(result.source)} in "
              f"{escape(rel)}")
    for old, new_spec in result.replaced:
        out.print(f"  ~ {escape(old)} → {escape(new_spec)}")
    for spec in result.added:
        out.print(f"  + {escape(spec)}")
    for spec in result.dropped:
        out.print(f"  - {escape(spec)}")
    for moved in result.moved:
        out.print(f"  {escape(moved.tag)}: {escape(moved.old or '(new)')} → {escape(moved.new)}")


def register(app: typer.Typer) -> None:
    app.command("init", epilog=INIT_EPILOG)(init)
    app.command("new", epilog=NEW_EPILOG)(new)
    app.command("tag", epilog=TAG_EPILOG)(tag)
    app.command("bump", epilog=BUMP_EPILOG)(bump)
