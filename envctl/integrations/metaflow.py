"""``@named_env``: run a function or a Metaflow-style step with a catalog environment.

::

    from envctl.integrations.metaflow import named_env

    class TrainFlow(FlowSpec):
        @named_env(name="@{TEAM}/train/base:v3")
        @step
        def train(self):
            subprocess.run(["python", "train.py"])   # the environment's python

    @named_env(name="ranking/base:stable", fetch_at_exec=True)
    def job():
        ...

What it does, following Metaflow's named environments:

- ``name`` is interpolated (``@{VAR}``) from the environment and resolved when the
  function is *decorated* — a deploy pins what the name meant then — unless
  ``fetch_at_exec=True``, which interpolates and resolves when the function *runs*
  (then ``METAFLOW_RUN_ID``, ``METAFLOW_STEP_NAME``, ``METAFLOW_TASK_ID`` and
  ``METAFLOW_INIT_<PARAM>`` may be used, and a mutable tag gives its latest target);
- ``pathspec="Flow/run/step"`` reuses the exact environment that step used;
- on each call the environment is created if needed (the shared cache by id makes
  that instant after the first time) and *activated for the call*: ``PATH``,
  ``CONDA_PREFIX`` and the env's variables are set in ``os.environ`` and restored
  afterwards, so subprocesses run in it. The function body itself still runs in
  the calling interpreter; running a Metaflow step's interpreter from the
  environment needs a Metaflow extension that switches the step's entrypoint;
- when the call is a step of a run (a method, with ``METAFLOW_RUN_ID`` set, or
  inside a Metaflow task), the alias and ``req_id:full_id`` are recorded under its
  pathspec (locally and in the store), so ``envctl create --pathspec`` and
  ``envctl info --pathspec`` reproduce it.

``func.envctl_env`` is the :class:`NamedEnv` binding: ``.resolved`` (ids, alias),
``.prefix``, ``.python``, ``.create()``, ``.run(argv)``.

The real Metaflow step decorator (``metaflow_extensions/envctl/plugins``: ``from
metaflow import named_env`` or ``--with named_env:name=...``) runs the step body in
the environment's own interpreter. It shares :class:`NamedEnv`, :class:`ExecVariables`
and :func:`task_launch` from here; this module stays importable without Metaflow.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from envctl.errors import EnvctlError

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.lookup import ResolvedRef
    from envctl.store.base import Store

F = TypeVar("F", bound=Callable[..., Any])

#: Variables Metaflow sets in a task; offered to ``@{VAR}`` at execution time.
_METAFLOW_CURRENT = {"METAFLOW_RUN_ID": "run_id", "METAFLOW_STEP_NAME": "step_name",
                     "METAFLOW_TASK_ID": "task_id", "METAFLOW_FLOW_NAME": "flow_name"}


def _metaflow_current() -> dict[str, str]:
    """``METAFLOW_*`` values from Metaflow's ``current`` when running inside a task."""
    try:
        from metaflow import current  # type: ignore[import-not-found]
    except ImportError:
        return {}
    found = {}
    for var, attr in _METAFLOW_CURRENT.items():
        with contextlib.suppress(Exception):  # outside a task ``current`` raises or is empty
            value = getattr(current, attr, None)
            if value:
                found[var] = str(value)
    return found


def exec_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables ``@{VAR}`` sees when a step runs: the process's, plus Metaflow's."""
    env = dict(os.environ if base is None else base)
    for var, value in _metaflow_current().items():
        env.setdefault(var, value)
    return env


#: Prefix of the variables that carry a run's parameters (``METAFLOW_INIT_ALPHA``).
PARAM_PREFIX = "METAFLOW_INIT_"

#: Variables only known once a task exists: a name using them needs ``fetch_at_exec``.
TASK_ONLY_VARIABLES = frozenset({"METAFLOW_TASK_ID"})


def param_variable(param: str) -> str:
    """``METAFLOW_INIT_<PARAM>`` for a parameter, as Metaflow spells it for schedulers."""
    return PARAM_PREFIX + param.upper().replace("-", "_")


class ExecVariables(Mapping[str, str]):
    """What ``@{VAR}`` sees in a Metaflow runtime: ``base`` (the process's environment)
    overlaid with what the runtime knows (run id, step name...), plus ``lazy`` values
    computed on first use only, so a name that uses no parameter never reads one from
    the datastore."""

    def __init__(
        self,
        base: Mapping[str, str] | None = None,
        known: Mapping[str, str] | None = None,
        lazy: Mapping[str, Callable[[], str]] | None = None,
    ) -> None:
        self._base = dict(os.environ if base is None else base)
        # The runtime's own values win: an outer run's METAFLOW_RUN_ID may be inherited.
        self._known = {k: v for k, v in (known or {}).items() if v is not None}
        self._lazy = dict(lazy or {})

    def __getitem__(self, key: str) -> str:
        if key in self._known:
            return self._known[key]
        if key in self._lazy:
            self._known[key] = str(self._lazy.pop(key)())
            return self._known[key]
        return self._base[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._base, **dict.fromkeys(self._lazy), **self._known})

    def __len__(self) -> int:
        return len({**self._base, **dict.fromkeys(self._lazy), **self._known})


def exec_hint(error: EnvctlError, *, fetch_at_exec: bool) -> EnvctlError:
    """``error`` with a better fix when a deploy-time name uses a task-time variable."""
    if fetch_at_exec or error.rule != "unset-variable":
        return error
    # The message starts with the variable reference that failed ("@{VAR} in ...").
    late = [v for v in TASK_ONLY_VARIABLES if error.message.startswith("@{" + v + "}")]
    if error.message.startswith("@{" + PARAM_PREFIX):
        late.append(PARAM_PREFIX + "<PARAM>")
    if not late:
        return error
    return type(error)(
        error.message, file=error.file, tag=error.tag, rule=error.rule,
        fix=f"{late[0]} is only known when the step runs: add fetch_at_exec=True",
    )


#: What a step's environment must provide for Metaflow to start a task in it: an
#: interpreter, and ``requests`` (``import metaflow`` loads the metadata service client).
TASK_NEEDS = ("python", "requests")


def missing_for_tasks(package_names: Iterable[str]) -> list[str]:
    """Which of :data:`TASK_NEEDS` an environment with these packages lacks."""
    have = {name.lower().replace("_", "-") for name in package_names}
    return [need for need in TASK_NEEDS if need not in have]


def task_launch(
    prefix: Path, extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """How to start a step's task in ``prefix``: the head of its command line (the env's
    python, wrapped to source ``activate.d`` scripts when the env has any) and the
    variables to set on top of ``base`` (default: this process's environment).

    ``extra`` is laid over the activation (e.g. ``PYTHONPATH`` of Metaflow's code).
    Variables activation removes (a caller's ``PYTHONHOME``, ``VIRTUAL_ENV``) come back
    empty: a launcher can only add variables, and Python treats an empty one as unset.
    """
    from envctl.activate import activation_command, activation_env

    before = dict(os.environ if base is None else base)
    after = activation_env(prefix, before)
    changes = {k: v for k, v in after.items() if before.get(k) != v}
    changes.update({k: "" for k in before if k not in after})
    # A user site-packages would shadow the environment's packages.
    changes["PYTHONNOUSERSITE"] = "1"
    changes.update(extra or {})
    python = str(prefix / ("python.exe" if os.name == "nt" else "bin/python"))
    return activation_command(prefix, [python]), changes


class NamedEnv:
    """One decorated function's environment: what it names and, once known, what it is."""

    def __init__(
        self,
        *,
        name: str | None,
        pathspec: str | None,
        fetch_at_exec: bool,
        catalog: Catalog | str | os.PathLike[str] | None,
        store: Store | str | None,
        platform: str | None,
    ) -> None:
        if (name is None) == (pathspec is None):
            raise EnvctlError(
                "@named_env takes exactly one of name= and pathspec=",
                rule="invalid-arguments",
                fix='@named_env(name="team/env:v1") or @named_env(pathspec="Flow/run/step")',
            )
        self.name = name
        self.pathspec = pathspec
        self.fetch_at_exec = fetch_at_exec
        self.catalog = catalog
        self.store = store
        self.platform = platform
        self.resolved: ResolvedRef | None = None
        self.prefix: Path | None = None

    def __repr__(self) -> str:
        what = self.name if self.name is not None else f"pathspec={self.pathspec}"
        ids = f" -> {self.resolved.env_id}" if self.resolved else ""
        return f"NamedEnv({what}{ids})"

    @property
    def env_id(self) -> str | None:
        return self.resolved.env_id if self.resolved else None

    @property
    def python(self) -> Path | None:
        return None if self.prefix is None else self.prefix / "bin" / "python"

    def resolve(self, environ: Mapping[str, str] | None = None) -> ResolvedRef:
        """Interpolate ``@{VAR}`` from ``environ`` (default: the process) and resolve."""
        # The API's resolve_ref, not lookup's: a retired tag warns or is refused here too.
        from envctl.api import resolve_ref
        from envctl.names import interpolate

        env = os.environ if environ is None else environ
        if self.name is not None:
            self.resolved = resolve_ref(
                interpolate(self.name, env), catalog=self.catalog, store=self.store,
                platform=self.platform,
            )
        else:
            assert self.pathspec is not None
            self.resolved = resolve_ref(
                pathspec=interpolate(self.pathspec, env), catalog=self.catalog,
                store=self.store, platform=self.platform,
            )
        return self.resolved

    def create(self) -> Path:
        """The environment's prefix, created in the shared cache by id if needed."""
        from envctl.api import install

        if self.resolved is None:
            self.resolve()
        assert self.resolved is not None
        self.prefix = install(self.resolved).prefix
        return self.prefix

    @contextlib.contextmanager
    def activated(self) -> Iterator[Path]:
        """``os.environ`` as if the environment were activated, for the ``with`` block."""
        from envctl.activate import activation_env

        prefix = self.prefix or self.create()
        saved = dict(os.environ)
        wanted = activation_env(prefix)
        try:
            os.environ.clear()
            os.environ.update(wanted)
            yield prefix
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run(argv)`` inside the environment (created if needed)."""
        from envctl.activate import activation_command, activation_env

        prefix = self.prefix or self.create()
        return subprocess.run(activation_command(prefix, argv), env=activation_env(prefix),
                              **kwargs)

    def record_run(self, pathspec: str) -> None:
        """Record that ``pathspec`` (Flow/run/step) used this environment."""
        from envctl.runs import RunRecord, register_run

        assert self.resolved is not None
        resolved = self.resolved
        register_run(
            RunRecord(
                **resolved.identity(),
                pathspec=pathspec,
                recorded_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
            ),
            store=resolved.store,
        )


def _run_pathspec(func: Callable[..., Any], args: tuple[Any, ...],
                  environ: Mapping[str, str]) -> str | None:
    """``Flow/run/step`` of this call when it is a step of a run, else None."""
    run_id = environ.get("METAFLOW_RUN_ID")
    if not run_id:
        return None
    flow = environ.get("METAFLOW_FLOW_NAME")
    if not flow:
        params = list(inspect.signature(func).parameters)
        if not (args and params and params[0] == "self"):
            return None  # a plain function: no flow to file it under
        flow = type(args[0]).__name__
    step = environ.get("METAFLOW_STEP_NAME") or func.__name__
    return f"{flow}/{run_id}/{step}"


def named_env(
    name: str | None = None,
    pathspec: str | None = None,
    fetch_at_exec: bool = False,
    *,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    platform: str | None = None,
) -> Callable[[F], F]:
    """Decorate a function or step to run with a catalog environment (module docstring)."""
    binding_args = {"name": name, "pathspec": pathspec, "fetch_at_exec": fetch_at_exec,
                    "catalog": catalog, "store": store, "platform": platform}

    def decorate(func: F) -> F:
        binding = NamedEnv(**binding_args)  # type: ignore[arg-type]
        if not fetch_at_exec:
            binding.resolve()  # at decoration (deploy) time: what the name means now

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            environ = exec_environ()
            if fetch_at_exec:
                binding.resolve(environ)
                binding.prefix = None  # a mutable tag may have moved since the last call
            with binding.activated():
                pathspec_now = _run_pathspec(func, args, environ)
                if pathspec_now is not None:
                    binding.record_run(pathspec_now)
                return func(*args, **kwargs)

        wrapper.envctl_env = binding  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
