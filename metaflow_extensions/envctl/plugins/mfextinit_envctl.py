"""envctl's Metaflow plugins: the ``@named_env`` step decorator.

Metaflow's extension mechanism reads this file (``mfextinit_<name>.py`` is one of the
two names it accepts for a plugins configuration; the other, ``__init__.py``, cannot
sit beside it). It must import nothing: a failing import here makes Metaflow ignore
every extension plugin. ``metaflow_extensions`` and ``metaflow_extensions/envctl`` have
no ``__init__.py`` on purpose — Metaflow requires implicit namespace packages there.
"""

STEP_DECORATORS_DESC = [("named_env", ".envctl_named_env.NamedEnvStepDecorator")]
