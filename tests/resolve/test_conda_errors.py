"""What a failed conda solve says: the right rule for each cause, and bugs stay bugs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from envctl.errors import SolveError
from envctl.resolve import conda
from envctl.resolve.channels import ChannelRef
from envctl.resolve.conda import CondaRequest, explain, solve_conda
from envctl.testing.channel import LocalChannel

# Before tinynum 2.0 and tinyframe 1.0 (2025), after tinynum 1.0/1.1.
MID_2024 = datetime(2024, 6, 1, tzinfo=UTC)
VIRTUAL = {"__glibc": "2.17", "__unix": "0"}


def request(channel: LocalChannel | str, specs: Sequence[str],
            exclude_newer: datetime | None = None) -> CondaRequest:
    url = channel if isinstance(channel, str) else channel.url
    return CondaRequest("linux-64", tuple(specs), (ChannelRef("local", url, url),), VIRTUAL,
                        exclude_newer)


def refusal(req: CondaRequest) -> SolveError:
    with pytest.raises(SolveError) as info:
        solve_conda(req)
    assert "\n" not in info.value.message
    return info.value


def test_a_version_that_does_not_exist_is_not_an_unknown_package(channel: LocalChannel) -> None:
    error = refusal(request(channel, ["python 3.12.*"]))
    assert error.rule == "unsatisfiable"
    assert error.message == "no version of python matches 3.12.* (available: 3.11.99)"
    assert error.fix == "relax the pin to one of the available versions of python"

    error = refusal(request(channel, ["tinynum >=5"]))
    assert (error.rule, error.message) == (
        "unsatisfiable", "no version of tinynum matches >=5 (available: 1.0, 1.1, 2.0)")


def test_versions_hidden_by_exclude_newer_are_named(channel: LocalChannel) -> None:
    error = refusal(request(channel, ["tinynum >=5"], MID_2024))
    assert error.message == (
        "no version of tinynum matches >=5 (available: 1.0, 1.1; published after exclude_newer "
        "2024-06-01T00:00:00Z: 2.0)"
    )
    # A version that matches exists, but only after the cut-off: say so, and why.
    error = refusal(request(channel, ["tinynum >=2"], MID_2024))
    assert error.rule == "unsatisfiable"
    assert error.message == (
        "no version of tinynum matching >=2 was published before exclude_newer "
        "2024-06-01T00:00:00Z (available: 1.0, 1.1; published later: 2.0)"
    )
    assert "exclude_newer" in (error.fix or "") and "new tag" in (error.fix or "")


def test_an_unknown_package_still_suggests_names(channel: LocalChannel) -> None:
    error = refusal(request(channel, ["libalpah"]))
    assert error.rule == "unknown-package"
    assert error.message == "no package named 'libalpah' in channel(s) local for linux-64"
    assert (error.fix or "").startswith("did you mean libalpha")


def test_a_missing_channel_is_unreachable(tmp_path: Path) -> None:
    url = (tmp_path / "nowhere").as_uri()
    error = refusal(request(url, ["tinynum"]))
    assert error.rule == "channel-unreachable"
    assert error.message.startswith(f"could not read the channels for linux-64 (local={url})")


def test_a_solver_timeout_says_so(channel: LocalChannel) -> None:
    from rattler.exceptions import SolverError

    error = explain(SolverError("Solve operation has been cancelled"),
                    request(channel, ["tinynum"]), conda.make_gateway())
    assert error.rule == "solve-timeout"
    assert error.message == "the conda solve for linux-64 did not finish within 5 minutes"


def test_any_other_failure_is_a_bug_and_propagates(channel: LocalChannel,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug, not a channel problem")

    monkeypatch.setattr(conda, "_solve", broken)
    with pytest.raises(KeyError):
        solve_conda(request(channel, ["tinynum"]))
    with pytest.raises(KeyError):  # explain never disguises an error it does not know
        explain(KeyError("x"), request(channel, ["tinynum"]), conda.make_gateway())
