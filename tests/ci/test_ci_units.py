"""Pieces of envctl ci on their own: the signer, the message, results folders, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.ci.artifacts import Published
from envctl.ci.commit import Dropped, commit_message, load_signer
from envctl.ci.report import Report
from envctl.ci.results import JobResult, PlatformIds, TagOutcome, read_results, write_results
from envctl.cli.main import app
from envctl.config import parse_config
from envctl.errors import EnvctlError, SolveError
from envctl.testing.handlocks import config_yaml
from envctl.testing.pushes import CI, Keys

R1, F1, R2, F2 = "1" * 40, "2" * 40, "3" * 40, "4" * 40


def outcome(alias: str = "team/env:v1", **kwargs) -> TagOutcome:
    fields = dict(
        status="resolved", message="wrote", platforms=(
            PlatformIds("linux-64", R1, F1), PlatformIds("osx-arm64", R2, F2)),
        resolved_by="Alice Doe <alice@example.org>", added_in="a" * 40, lock_sha256="5" * 64,
        uploaded=3, skipped=1, bytes=100,
        files={"locks/team/env/v1.conda-lock.yml": b"lock\n",
               "locks/team/env/v1.meta.yaml": b"meta\n"},
    )
    fields.update(kwargs)
    return TagOutcome(alias, **fields)  # type: ignore[arg-type]


def test_commit_message_lists_ids_authors_and_pending() -> None:
    text = commit_message([outcome()], {"team/bad:v1": "no package named  'x'\n[rule]"})
    assert text == (
        "envctl ci: lock team/env:v1\n"
        "\n"
        f"team/env:v1 → {R1}:{F1} (linux-64)\n"
        f"team/env:v1 → {R2}:{F2} (osx-arm64)\n"
        "  resolved by Alice Doe <alice@example.org> (added in aaaaaaaaaaaa)\n"
        "\n"
        "Still pending:\n"
        "  team/bad:v1: no package named 'x' [rule]\n"
        "\n"
        "Envctl-CI: 0.1.0\n"
        "Envctl-Pending: team/bad:v1\n"
    )
    many = commit_message([outcome(f"team/e{i}:v1") for i in range(4)], {}, subject="refresh")
    assert many.startswith("envctl ci: refresh 4 environments\n")


def test_signer_comes_from_the_option_or_the_environment(keys: Keys, tmp_path: Path) -> None:
    config = parse_config(yamlio.load(config_yaml(signers=[(CI, keys.ci.public)])))
    signer = load_signer(config, keys.ci.private)
    assert signer.principal == CI and signer.env["GIT_COMMITTER_EMAIL"] == CI
    via_env = load_signer(config, None, {"ENVCTL_CI_SIGNING_KEY": str(keys.ci.private)})
    assert via_env.key == keys.ci.private
    # Without the .pub file beside it, the public key is derived with ssh-keygen.
    bare = tmp_path / "key"
    bare.write_bytes(keys.ci.private.read_bytes())
    bare.chmod(0o600)
    assert load_signer(config, bare).principal == CI

    with pytest.raises(EnvctlError) as missing:
        load_signer(config, None, {})
    assert missing.value.rule == "signing-key"
    assert "--sign-key PATH or set ENVCTL_CI_SIGNING_KEY" in missing.value.fix
    with pytest.raises(EnvctlError) as stranger:
        load_signer(config, keys.mallory.private)
    assert stranger.value.rule == "unknown-signer"
    assert "not in catalog.yaml's allowed_signers" in stranger.value.message
    with pytest.raises(EnvctlError, match="does not exist"):
        load_signer(config, tmp_path / "nope")


def test_results_folder_round_trip(tmp_path: Path) -> None:
    failed = TagOutcome("team/bad:v1", "failed", "boom",
                        error=SolveError("boom", rule="unknown-package").to_dict())
    job = JobResult(head="h" * 40, store="file:///s", outcomes=(outcome(), failed),
                    deferred=("team/later:v1",))
    write_results(tmp_path / "r", job)
    back = read_results(tmp_path / "r")
    assert back == job
    assert back.outcomes[0].files == outcome().files
    assert back.outcomes[1].error["rule"] == "unknown-package"

    data = json.loads((tmp_path / "r" / "ci-result.json").read_text())
    data["version"] = "9"
    (tmp_path / "r" / "ci-result.json").write_text(json.dumps(data))
    with pytest.raises(EnvctlError, match="results version 9"):
        read_results(tmp_path / "r")
    with pytest.raises(EnvctlError, match=r"no ci-result\.json"):
        read_results(tmp_path / "empty")
    with pytest.raises(EnvctlError, match="not a lock file path"):
        write_results(tmp_path / "x", JobResult("h", "s", (outcome(files={"../x": b""}),)))


def test_report_exit_code_json_and_markdown() -> None:
    bad = TagOutcome("team/bad:v1", "failed", "boom", error={
        "rule": "unknown-package", "message": "no package named 'tinynumm'",
        "fix": "did you mean tinynum?"})
    report = Report(command="run", store="file:///s", outcomes=[outcome(), bad],
                    pending={"team/bad:v1": "no package | named"}, commit="c" * 40,
                    landed=True, races=1,
                    published=[Published("team/env:v1", "published", "ids")])
    assert report.exit_code == 1 and report.locked == ["team/env:v1"]
    data = report.to_dict()
    assert data["ok"] is False and data["failed"][0]["rule"] == "unknown-package"
    text = report.to_markdown()
    assert text.startswith("## envctl ci resolve: ❌ failed\n\nCommitted `cccccccccccc` after "
                           "1 lost race(s)")
    assert f"| `team/env:v1` | locked | linux-64 | `{R1}:{F1}` | 3 / 1 |" in text
    assert "- `team/bad:v1` `unknown-package`: no package named 'tinynumm' — did you mean" in text
    assert "- `team/bad:v1`: no package \\| named" in text  # a pipe cannot break the table

    ok = Report(command="refresh", outcomes=[outcome(status="unchanged", files={})])
    assert ok.exit_code == 0 and ok.locked == []
    assert ok.to_markdown().startswith("## envctl ci refresh: ✅ done\n\nNothing to commit.")
    dropped = Report(command="run", outcomes=[outcome()], landed=True, commit="c" * 40,
                     dropped=[Dropped("team/env:v1", "its spec changed", True)])
    assert dropped.locked == [] and "| `team/env:v1` | pending |" in dropped.to_markdown()


def test_cli_refuses_to_start_without_a_key_or_a_store(world) -> None:
    ci = world.clone("ci")
    runner = CliRunner()
    no_key = runner.invoke(app, ["--catalog", str(ci.path), "ci", "run", "--store",
                                 str(world.store.root)], env={"ENVCTL_CI_SIGNING_KEY": ""})
    assert no_key.exit_code == 1
    assert "no signing key for the commit back" in no_key.output
    no_store = runner.invoke(app, ["--catalog", str(ci.path), "ci", "run"],
                             env={"ENVCTL_STORE": ""})
    assert no_store.exit_code == 1
    assert "no artifact store" in no_store.output and "--store URL" in no_store.output
