"""Verify the SSH signatures of commits that write locks, against the catalog's signers.

The allowed-signers file is built from ``allowed_signers`` of the catalog config *before
the push*, so a push that adds its own key cannot use it. The check is git's own (the
payload is the commit without its ``gpgsig`` header, the namespace is ``git``), done
with ``ssh-keygen -Y verify`` directly rather than ``git verify-commit``: one process per
commit instead of three, and the principal is checked, which git never does (it reports
whichever principal the key belongs to and does not compare it with the committer):

1. ``ssh-keygen -Y verify -I <committer e-mail>``: succeeds only if the signature is valid
   *and* made by a key listed for that principal. The usual case: done.
2. Otherwise ``-Y find-principals`` names the key's principal, if any, and ``-Y verify``
   with it tells a valid signature by another signer (the policy refuses it as a forged
   signer) from a bad one. A key nobody lists is an unknown signer.

All commit objects are read through one ``git cat-file --batch``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from envctl.config import CatalogConfig
from envctl.errors import EnvctlError
from envctl.git import git_env, run_git
from envctl.policy import SignatureCheck

NAMESPACE = "git"
# A principal is written into the allowed-signers file; refuse anything that could be read
# as a pattern (*, ?, !), a list (,), an option or a second field.
_SAFE_PRINCIPAL = re.compile(r"[A-Za-z0-9._+@-]+")
_SIG_HEADER = b"gpgsig "


def allowed_signers_text(config: CatalogConfig) -> str:
    """The allowed-signers file for ``config`` (namespace ``git`` only)."""
    lines = []
    for signer in config.allowed_signers:
        key = " ".join(signer.key.split())  # one line, whatever the YAML held
        if not _SAFE_PRINCIPAL.fullmatch(signer.principal):
            continue  # it could never equal a committer e-mail anyway
        lines.append(f'{signer.principal} namespaces="{NAMESPACE}" {key}')
    return "".join(line + "\n" for line in lines)


def split_signature(raw: bytes) -> tuple[bytes, bytes | None]:
    """A commit object -> (the signed payload, the armored signature or None)."""
    header, sep, body = raw.partition(b"\n\n")
    kept: list[bytes] = []
    signature: list[bytes] = []
    in_sig = False
    for line in header.split(b"\n"):
        if line.startswith(_SIG_HEADER):
            signature.append(line[len(_SIG_HEADER):])
            in_sig = True
        elif in_sig and line.startswith(b" "):
            signature.append(line[1:])
        else:
            in_sig = False
            kept.append(line)
    payload = b"\n".join(kept) + sep + body
    return payload, (b"\n".join(signature) + b"\n") if signature else None


def signature_fingerprint(armored: bytes) -> str | None:
    """``SHA256:...`` of the public key inside an SSHSIG signature (no process needed)."""
    lines = armored.decode("ascii", "replace").strip().splitlines()
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        return None
    if not blob.startswith(b"SSHSIG") or len(blob) < 14:
        return None
    size = int.from_bytes(blob[10:14], "big")
    key = blob[14 : 14 + size]
    if len(key) != size:
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


class Verifier:
    """Verifies commits against one config's signers; writes the signers file once."""

    def __init__(self, repo: str | os.PathLike[str], config: CatalogConfig, *,
                 scrub: bool = True) -> None:
        self.repo = repo
        self.scrub = scrub
        self._dir = tempfile.TemporaryDirectory(prefix="envctl-signers-")
        self.folder = Path(self._dir.name)
        self.allowed = self.folder / "allowed_signers"
        self.allowed.write_text(allowed_signers_text(config), encoding="utf-8")

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._dir.cleanup()

    def verify_many(self, commits: Sequence[tuple[str, str]]) -> dict[str, SignatureCheck]:
        """``{sha: check}`` for ``(sha, committer e-mail)`` pairs."""
        raws = self._read_commits([sha for sha, _ in commits])
        return {sha: self.verify_raw(sha, raws.get(sha, b""), email) for sha, email in commits}

    def verify_raw(self, sha: str, raw: bytes, email: str) -> SignatureCheck:
        payload, signature = split_signature(raw)
        if signature is None:
            return SignatureCheck("none")
        if not signature.startswith(b"-----BEGIN SSH SIGNATURE-----"):
            return SignatureCheck("bad", detail="not an SSH signature (git's gpg.format=ssh)")
        fingerprint = signature_fingerprint(signature)
        sig_file = self.folder / f"{sha}.sig"
        sig_file.write_bytes(signature)
        if _SAFE_PRINCIPAL.fullmatch(email) and self._verify(sig_file, payload, email):
            return SignatureCheck("good", principal=email, fingerprint=fingerprint)
        found = self._ssh_keygen(["-Y", "find-principals", "-f", str(self.allowed),
                                  "-s", str(sig_file)])
        principals = found.stdout.decode("utf-8", "replace").split()
        if found.returncode != 0 or not principals:
            return SignatureCheck("unknown-key", fingerprint=fingerprint,
                                  detail="no principal matched")
        for principal in principals:
            if self._verify(sig_file, payload, principal):
                return SignatureCheck("good", principal=principal, fingerprint=fingerprint)
        return SignatureCheck("bad", fingerprint=fingerprint,
                              detail="the signature does not match the commit")

    def _verify(self, sig_file: Path, payload: bytes, principal: str) -> bool:
        proc = self._ssh_keygen(
            ["-Y", "verify", "-f", str(self.allowed), "-I", principal, "-n", NAMESPACE,
             "-s", str(sig_file)],
            input=payload,
        )
        return proc.returncode == 0

    def _ssh_keygen(self, args: list[str], *, input: bytes | None = None,
                    ) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["ssh-keygen", *args], input=input, capture_output=True,
                                  env=git_env(), timeout=30, check=False)
        except FileNotFoundError:
            raise EnvctlError(
                "ssh-keygen is not installed, so lock signatures cannot be checked",
                rule="server-setup", fix="install OpenSSH (8.2 or newer) on the server",
            ) from None

    def _read_commits(self, shas: list[str]) -> dict[str, bytes]:
        if not shas:
            return {}
        out = run_git(self.repo, ["cat-file", "--batch"], scrub=self.scrub,
                      input="".join(s + "\n" for s in shas).encode()).stdout
        found: dict[str, bytes] = {}
        pos = 0
        for sha in shas:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) != 3:
                continue  # missing
            size = int(header[2])
            if header[1] == b"commit":
                found[sha] = out[pos : pos + size]
            pos += size + 1
        return found
