pytest_plugins = ["envctl.testing.pytest_plugin", "envctl.testing.s3_plugin"]
