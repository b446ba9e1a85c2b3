pytest_plugins = ["envctl.testing.pytest_plugin"]
