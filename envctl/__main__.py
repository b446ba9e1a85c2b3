"""``python -m envctl`` is the ``envctl`` command."""

from envctl.cli.main import run

run()
