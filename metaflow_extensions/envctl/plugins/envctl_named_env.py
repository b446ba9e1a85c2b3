"""``@named_env``: run a Metaflow step in a catalog environment's own interpreter.

::

    from metaflow import FlowSpec, step, named_env

    class TrainFlow(FlowSpec):
        @named_env(name="ranking/train:v3")
        @step
        def train(self): ...

        @named_env(name="@{TEAM}/train:stable", fetch_at_exec=True)
        @step
        def score(self): ...

or for every step without one: ``python flow.py run --with named_env:name=ranking/train:v3``.

Exactly one of ``name`` (``NAME[:TAG]`` or ``REQ_ID:FULL_ID``, with ``@{VAR}``) and
``pathspec`` (``Flow/run/step``: the environment that step used). Optional ``catalog``
(path or git URL) and ``store`` (URL) override ``$ENVCTL_CATALOG``/``$ENVCTL_STORE``.

When what happens, in which process:

- the runtime (``run``/``resume``), at ``runtime_init``: a name is resolved once for the
  run — a mutable tag means what it meant when the run started — unless
  ``fetch_at_exec=True``; ``@{VAR}`` sees the environment, ``METAFLOW_RUN_ID``,
  ``METAFLOW_STEP_NAME`` and ``METAFLOW_FLOW_NAME``. Metaflow's code package is
  extracted once, to put Metaflow (and this extension) on the task's ``PYTHONPATH``;
- the runtime, when it creates a step's first task (``runtime_task_created``): with
  ``fetch_at_exec=True`` the name is resolved now, and ``@{VAR}`` also sees
  ``METAFLOW_TASK_ID`` and ``METAFLOW_INIT_<PARAM>`` (the run's parameters, read from
  the task's input; only now, as ``run`` sets them after the runtime starts). The
  other tasks of the step (a foreach) reuse that, unless the name uses
  ``METAFLOW_TASK_ID``. The step's environment is recorded in envctl's run registry
  (locally and in the store), so ``envctl info|show|create --pathspec`` reproduce it;
- the runtime, when it launches the task (``runtime_step_cli``): the environment is
  created if needed (the cache by id makes that instant after the first time) and the
  task's interpreter switched to the environment's python (``cli_args.entrypoint``), as
  Metaflow's own ``@conda`` does, with the env activated (PATH, CONDA_PREFIX, its
  variables and ``activate.d`` scripts);
- the task (``task_pre_step``): checks it really runs in that environment and registers
  the alias and ``req_id:full_id`` as task metadata (``envctl_env_id``...).

The task side imports only the standard library and Metaflow: envctl and its
dependencies live in the runtime's interpreter, not in the step's environment, which
only needs what ``import metaflow`` needs (``requests``). Remote steps (``@batch``,
``@kubernetes``...) are refused for now: nothing there would switch the interpreter.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any, ClassVar

from metaflow.decorators import StepDecorator
from metaflow.exception import MetaflowException
from metaflow.metadata_provider import MetaDatum

if TYPE_CHECKING:
    from envctl.integrations.metaflow import NamedEnv

#: The runtime hands the task what it resolved here (JSON), so the task never resolves.
HANDOFF_ENV = "ENVCTL_METAFLOW_ENV"

#: Metadata fields registered on each task (Metaflow's @conda registers ``conda_env_id``).
METADATA_FIELDS = ("env_id", "alias", "asked", "platform")

# Decorators that run the task elsewhere, where no runtime_step_cli would switch the
# interpreter (the same list Metaflow's @conda checks).
REMOTE_DECORATORS = frozenset(
    {"batch", "kubernetes", "nvidia", "snowpark", "slurm", "nvct", "skypilot_step"}
)

# Decorators that also pick the step's interpreter; two would fight over the entrypoint.
# (@conda_base/@pypi_base and --environment=conda attach @conda to every step.)
ENV_DECORATORS = frozenset({"conda", "pypi"})


class NamedEnvException(MetaflowException):
    headline = "@named_env"


def _as_bool(value: Any) -> bool:
    """``--with`` hands attributes over as text: ``fetch_at_exec=False`` arrives as "False"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _envctl_error(exc: Exception) -> NamedEnvException:
    render = getattr(exc, "render", None)
    return NamedEnvException(render() if callable(render) else str(exc))


class NamedEnvStepDecorator(StepDecorator):
    """Run the step in a named catalog environment (module docstring).

    Parameters
    ----------
    name : str, optional
        ``NAME[:TAG]`` or ``REQ_ID:FULL_ID``; ``@{VAR}`` is interpolated.
    pathspec : str, optional
        ``Flow/run/step``: reuse the environment that step used.
    fetch_at_exec : bool, default False
        Resolve when the step runs instead of when the run starts.
    catalog : str, optional
        Catalog path or git URL (default ``$ENVCTL_CATALOG``, or found from the cwd).
    store : str, optional
        Artifact store URL (default ``$ENVCTL_STORE``, or catalog.yaml's).
    """

    name = "named_env"
    defaults: ClassVar[dict[str, Any]] = {
        "name": None,
        "pathspec": None,
        "fetch_at_exec": False,
        "catalog": None,
        "store": None,
    }

    # Once per run, shared by every step's instance: the extracted code package.
    _code_dir: ClassVar[tempfile.TemporaryDirectory[str] | None] = None
    _code_env: ClassVar[dict[str, str]] = {}

    # -- every process ----------------------------------------------------------------------

    def step_init(self, flow: Any, graph: Any, step_name: str, decorators: list[Any],
                  environment: Any, flow_datastore: Any, logger: Any) -> None:
        self._flow = flow
        self._step = step_name
        self._flow_datastore = flow_datastore
        self._logger = logger
        self._fetch_at_exec = _as_bool(self.attributes["fetch_at_exec"])
        self.attributes["fetch_at_exec"] = self._fetch_at_exec
        self._binding: NamedEnv | None = None
        self._run_id: str | None = None
        self._recorded: str | None = None
        name, pathspec = self.attributes["name"], self.attributes["pathspec"]
        if (name is None) == (pathspec is None):
            raise NamedEnvException(
                f"step {step_name!r}: give exactly one of name= and pathspec=, e.g. "
                '@named_env(name="team/env:v1") or @named_env(pathspec="Flow/123/train")'
            )
        others = sorted({d.name for d in decorators} & (REMOTE_DECORATORS | ENV_DECORATORS))
        if others:
            raise NamedEnvException(
                f"step {step_name!r}: @named_env cannot be combined with "
                f"{', '.join('@' + o for o in others)} (remote steps are not supported yet; "
                "@conda/@pypi choose the interpreter too)"
            )

    # -- the runtime ------------------------------------------------------------------------

    def runtime_init(self, flow: Any, graph: Any, package: Any, run_id: str) -> None:
        self._run_id = str(run_id)
        self._extract_code(package)
        if not self._fetch_at_exec:
            self._resolve({})  # when the run starts: what the name means now

    def runtime_task_created(self, task_datastore: Any, task_id: str, split_index: Any,
                             input_paths: list[str], is_cloned: bool,
                             ubf_context: Any) -> None:
        if is_cloned:
            return  # resume reuses the original task; nothing runs
        if self._fetch_at_exec and (self._binding is None or self._per_task()):
            # Once per step of the run (its first task), so the tasks of a foreach agree
            # and the run registry's "one step, one environment" holds — unless the name
            # itself differs per task.
            self._resolve({"METAFLOW_TASK_ID": str(task_id)}, self._param_values(input_paths))
        self._record()

    def runtime_step_cli(self, cli_args: Any, retry_count: int, max_user_code_retries: int,
                         ubf_context: Any) -> None:
        from envctl.errors import EnvctlError
        from envctl.integrations.metaflow import task_launch

        binding = self._binding
        assert binding is not None and binding.resolved is not None
        try:
            prefix = binding.create()
        except EnvctlError as exc:
            raise _envctl_error(exc) from None
        resolved = binding.resolved
        self._logger(
            f"@named_env: step {self._step} runs in {resolved.alias or resolved.asked} "
            f"({resolved.env_id})", system_msg=True,
        )
        head, env = task_launch(prefix, self._code_env)
        env[HANDOFF_ENV] = json.dumps({
            "pathspec": self._pathspec(),
            "env_id": resolved.env_id,
            "alias": resolved.alias or "",
            "asked": resolved.asked,
            "platform": resolved.platform,
            "prefix": str(prefix),
        })
        cli_args.env.update(env)
        cli_args.entrypoint[:1] = head  # the env's python instead of the runtime's

    def runtime_finished(self, exception: Any) -> None:
        cls = NamedEnvStepDecorator
        if cls._code_dir is not None:
            cls._code_dir.cleanup()
            cls._code_dir = None
            cls._code_env = {}

    # -- the task ---------------------------------------------------------------------------

    def task_pre_step(self, step_name: str, task_datastore: Any, metadata: Any, run_id: str,
                      task_id: str, flow: Any, graph: Any, retry_count: int,
                      max_user_code_retries: int, ubf_context: Any, inputs: Any) -> None:
        handoff = self._handoff(step_name, str(run_id))
        here = os.path.realpath(sys.prefix)
        if here != os.path.realpath(handoff["prefix"]):
            raise NamedEnvException(
                f"step {step_name!r} should run in {handoff['prefix']} but runs in {here} "
                f"({sys.executable})"
            )
        metadata.register_metadata(run_id, step_name, task_id, [
            MetaDatum(field=f"envctl_{key}", value=str(handoff[key]), type=f"envctl_{key}",
                      tags=[f"attempt_id:{retry_count}"])
            for key in METADATA_FIELDS
        ])

    # -- helpers ----------------------------------------------------------------------------

    def _per_task(self) -> bool:
        template = self.attributes["name"] or self.attributes["pathspec"] or ""
        return "@{METAFLOW_TASK_ID}" in template

    def _pathspec(self) -> str:
        return f"{self._flow.name}/{self._run_id}/{self._step}"

    def _handoff(self, step_name: str, run_id: str) -> dict[str, str]:
        raw = os.environ.get(HANDOFF_ENV, "")
        try:
            handoff = json.loads(raw) if raw else None
        except ValueError:
            handoff = None
        wanted = f"{self._flow.name}/{run_id}/{step_name}"
        if not isinstance(handoff, dict) or handoff.get("pathspec") != wanted:
            raise NamedEnvException(
                f"task {wanted} was not started in its environment by the runtime "
                "(@named_env needs 'run' or 'resume' on this machine; remote and scheduled "
                "execution are not supported yet)"
            )
        return handoff

    def _extract_code(self, package: Any) -> None:
        """Metaflow's code package, extracted once: the task imports Metaflow (and this
        extension) from there, not from the runtime's site-packages, whose other
        packages would shadow the environment's."""
        from metaflow.packaging_sys import ContentType

        cls = NamedEnvStepDecorator
        if cls._code_dir is not None:
            return
        code_dir = tempfile.TemporaryDirectory(prefix="envctl-metaflow-")
        wanted = (ContentType.CODE_CONTENT.value | ContentType.MODULE_CONTENT.value
                  | ContentType.OTHER_CONTENT.value)
        package.extract_into(code_dir.name, wanted)
        env: dict[str, str] = {}
        # Same reading as Metaflow's @conda: "KEY:" means set as is.
        for key, value in package.get_post_extract_env_vars(
            package.package_metadata, code_dir.name
        ).items():
            env[key.rstrip(":")] = value
        # Deliberately not the runtime's PYTHONPATH: it may name the runtime's packages.
        env["PYTHONPATH"] = env.get("PYTHONPATH") or code_dir.name
        cls._code_dir, cls._code_env = code_dir, env

    def _variables(self, extra: dict[str, str],
                   lazy: dict[str, Any] | None = None) -> Any:
        from envctl.integrations.metaflow import ExecVariables

        known = {"METAFLOW_RUN_ID": self._run_id, "METAFLOW_STEP_NAME": self._step,
                 "METAFLOW_FLOW_NAME": self._flow.name, **extra}
        return ExecVariables(os.environ, known, lazy)

    def _resolve(self, extra: dict[str, str], lazy: dict[str, Any] | None = None) -> None:
        """Resolve (again, for fetch_at_exec) into ``self._binding``; errors read as Metaflow's."""
        try:
            from envctl.errors import EnvctlError
            from envctl.integrations.metaflow import NamedEnv, exec_hint, missing_for_tasks
        except ImportError as exc:
            raise NamedEnvException(
                f"@named_env needs envctl in the interpreter that runs the flow ({exc})"
            ) from None
        if self._binding is None:
            try:
                self._binding = NamedEnv(
                    name=self.attributes["name"], pathspec=self.attributes["pathspec"],
                    fetch_at_exec=self._fetch_at_exec, catalog=self.attributes["catalog"],
                    store=self.attributes["store"], platform=None,
                )
            except EnvctlError as exc:
                raise _envctl_error(exc) from None
        try:
            resolved = self._binding.resolve(self._variables(extra, lazy))
        except EnvctlError as exc:
            raise _envctl_error(exec_hint(exc, fetch_at_exec=self._fetch_at_exec)) from None
        self._binding.prefix = None  # a new resolution may name another environment
        # Now rather than as an ImportError inside the task.
        missing = missing_for_tasks(p.name for p in resolved.lock.for_platform(resolved.platform))
        if missing:
            raise NamedEnvException(
                f"step {self._step!r}: {resolved.alias or resolved.asked} ({resolved.env_id}) "
                f"has no {' and no '.join(missing)}, which Metaflow needs to run a step in it: "
                "add them to the environment (a new tag)"
            )

    def _record(self) -> None:
        """The run registry entry for this step (once per step of a run: one env per step)."""
        from envctl.errors import EnvctlError

        assert self._binding is not None and self._binding.resolved is not None
        env_id = self._binding.resolved.env_id
        if self._recorded == env_id:
            return
        try:
            self._binding.record_run(self._pathspec())
        except EnvctlError as exc:
            raise _envctl_error(exc) from None
        self._recorded = env_id

    def _param_values(self, input_paths: list[str]) -> dict[str, Any]:
        """``METAFLOW_INIT_<PARAM>`` read lazily from the task's input (every task of a run
        carries the run's parameters), as the task itself will see them."""
        from envctl.integrations.metaflow import param_variable

        if not input_paths:
            return {}
        run_id, step_name, task_id = input_paths[0].split("/")[:3]
        holder: dict[str, Any] = {}

        def load(var: str) -> str:
            if "ds" not in holder:
                holder["ds"] = self._flow_datastore.get_task_datastore(
                    run_id, step_name, task_id)
            return str(holder["ds"][var])

        return {
            param_variable(var): (lambda var=var: load(var))
            for var, param in self._flow._get_parameters()
            if not getattr(param, "IS_CONFIG_PARAMETER", False)
        }
