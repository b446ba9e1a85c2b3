"""Hypothesis profiles for the fuzz tests, and a guard that turns a hang into a failure.

Profiles (pick one with ``HYPOTHESIS_PROFILE``; the fuzz tests read it, see README.md):

- ``fuzz`` (the default, what CI runs): a bounded number of examples per test, derandomized
  so that a CI run is reproducible, no per-example deadline (a loaded CI machine must not
  make it flaky; the guard below still catches a hang).
- ``long``: many examples, random, for a long local or nightly run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest
from hypothesis import HealthCheck, settings

PROFILES = ("fuzz", "long")
#: Seconds one fuzz test may take before it counts as hung (the long profile: unlimited).
HANG_SECONDS = 120

settings.register_profile(
    "fuzz",
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=50_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz_profile() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
    return name if name in PROFILES else "fuzz"


class Hung(BaseException):
    """Raised by the alarm; a BaseException so the code under test cannot swallow it."""


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """Fail a fuzz test that runs past HANG_SECONDS instead of blocking the run."""
    if fuzz_profile() == "long" or not hasattr(signal, "SIGALRM"):
        yield
        return

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"a fuzz test ran for more than {HANG_SECONDS} s: an input hangs")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
