"""The small pieces of the hook path: stdin parsing, identity, signature output, the import
path staying light."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from envctl.config import CatalogConfig, Signer
from envctl.hook import main, parse_updates, pusher_identity
from envctl.policy import ZERO_SHA, SignatureCheck, key_fingerprint
from envctl.signing import Verifier, allowed_signers_text
from envctl.testing.pushes import Keys, git


def test_parse_updates() -> None:
    a, b = "a" * 40, "b" * 40
    text = f"{a} {b} refs/heads/main\n{ZERO_SHA} {b} refs/heads/new\n\n{a} {ZERO_SHA} refs/x\n"
    updates = parse_updates(text)
    assert [(u.ref, u.created, u.deleted, u.branch) for u in updates] == [
        ("refs/heads/main", False, False, "main"),
        ("refs/heads/new", True, False, "new"),
        ("refs/x", False, True, None),
    ]


def test_pusher_identity_order() -> None:
    assert pusher_identity({}) is None
    assert pusher_identity({"ENVCTL_PUSHER": "e", "REMOTE_USER": "r"}) == "r"
    assert pusher_identity({"GL_USERNAME": "gl", "GITHUB_USER_LOGIN": "gh"}) == "gl"
    assert pusher_identity({"GITHUB_USER_LOGIN": " gh ", "ENVCTL_PUSHER": "e"}) == "gh"


def test_main_with_nothing_to_do_is_quiet() -> None:
    err = io.StringIO()
    assert main(stdin=io.StringIO(""), stderr=err, environ={}) == 0
    assert err.getvalue() == ""


def test_fingerprint_matches_ssh_keygen(keys: Keys) -> None:
    out = subprocess.run(["ssh-keygen", "-l", "-f", f"{keys.ci.private}.pub"],
                         capture_output=True, text=True, check=True).stdout
    assert key_fingerprint(keys.ci.public) == out.split()[1]
    assert key_fingerprint("ssh-ed25519 !!notbase64") is None


def test_allowed_signers_skips_patterns() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA ci"
    config = CatalogConfig(allowed_signers=[
        Signer(principal="ci@example.org", key=key),
        Signer(principal="*", key=key),
        Signer(principal="a,b", key=key),
    ])
    assert allowed_signers_text(config) == f'ci@example.org namespaces="git" {key}\n'


def test_verifier(keys: Keys, tmp_path: Path) -> None:
    """Good, forged (another allowed signer), unknown key, unsigned and tampered commits."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "--quiet", str(repo))

    def commit(name: str, key: Path | None, email: str) -> str:
        (repo / name).write_text(name)
        git(repo, "add", name)
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"] if key else []
        git(repo, *sign, "commit", "--quiet", "-m", name, *(["-S"] if key else []),
            env={"GIT_COMMITTER_EMAIL": email})
        return git(repo, "rev-parse", "HEAD").stdout.strip()

    good = commit("a", keys.ci.private, "ci@example.org")
    forged = commit("b", keys.alice.private, "ci@example.org")
    unknown = commit("c", keys.mallory.private, "ci@example.org")
    unsigned = commit("d", None, "ci@example.org")
    config = CatalogConfig(allowed_signers=[
        Signer(principal="ci@example.org", key=keys.ci.public),
        Signer(principal="alice@example.org", key=keys.alice.public),
    ])
    with Verifier(repo, config) as verifier:
        found = verifier.verify_many([(sha, "ci@example.org")
                                      for sha in (good, forged, unknown, unsigned)])
        raw = git(repo, "cat-file", "commit", good).stdout.encode()
        tampered = verifier.verify_raw("t", raw.replace(b"\n\na", b"\n\nb"), "ci@example.org")
    assert found[good] == SignatureCheck("good", principal="ci@example.org",
                                         fingerprint=key_fingerprint(keys.ci.public))
    assert found[forged].status == "good" and found[forged].principal == "alice@example.org"
    assert found[unknown] == SignatureCheck("unknown-key", detail="no principal matched",
                                            fingerprint=key_fingerprint(keys.mallory.public))
    assert found[unsigned] == SignatureCheck("none")
    assert tampered.status == "bad"


def test_the_hook_import_path_is_light() -> None:
    code = (
        "import sys, envctl.hook, envctl.check, envctl.policy, envctl.signing, "
        "envctl.lockcheck\n"
        "heavy = {'rattler', 'conda_lock', 'jinja2', 'git', 'typer', 'rich', 'ruamel'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
