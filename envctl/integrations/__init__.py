"""Integrations with workflow tools. Each module imports its tool lazily, if at all."""
