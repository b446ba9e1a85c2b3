"""Offline test fixtures for envctl: a local conda channel, a PyPI index, git sandboxes.

Nothing here reaches the network. The channel's bytes are identical on every
machine and every run, so ids computed from it can be pinned in tests.

This package imports nothing heavy at import time; import the submodules you need:

- ``envctl.testing.channel``: ``build_channel``, ``channel_url``
- ``envctl.testing.hostpython``: make a host interpreter the python of a prefix
- ``envctl.testing.pypi_index``: ``serve_pypi_index``
- ``envctl.testing.pytest_plugin``: the fixtures (``channel``, ``pypi_index``, ...)
"""
