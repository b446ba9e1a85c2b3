"""Hostile and careless pushes, each a real ``git push`` to a real bare server with the
installed hook: every one is refused or accepted correctly, with clean output, and the
hook answers within the deadline it enforces itself (``ENVCTL_HOOK_DEADLINE``, 4 s by
default: it refuses rather than hangs).

The wall-time bound in these tests (``HANG``) is only a sanity check that catches a hang;
it is not a performance assertion (``benchmarks/run.py`` measures the hook).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from envctl.testing.handlocks import env_yaml
from envctl.testing.pushes import ENV, LOCK, Clone, Push, Server, git

MAIN = "refs/heads/main"
HANG = 30.0  # seconds; far above the hook's own 4 s deadline
# The hook's default deadline, as a server runs it (the fixture raises it for slow CI; these
# tests are about answering in time, so they put it back where it is in production unless
# a test says otherwise).
DEADLINE = {"ENVCTL_HOOK_DEADLINE": "4"}


def timed_push(clone: Clone, *args: str, env: dict[str, str] | None = None) -> Push:
    start = time.monotonic()
    push = clone.push(*args, env=env)
    took = time.monotonic() - start
    assert took < HANG, f"the push took {took:.0f} s: the hook hung"
    assert "Traceback" not in push.stderr, push.stderr
    return push


def refused(push: Push, rule: str) -> None:
    assert push.returncode != 0, push.stderr
    assert rule in push.rules, push.stderr


def fast_import(clone: Clone, stream: bytes) -> str:
    """Write commits with ``git fast-import`` onto ``refs/robust/tmp``; return its tip."""
    proc = subprocess.run(["git", "fast-import", "--quiet", "--done", "--force"],
                          cwd=clone.path, input=stream + b"done\n", capture_output=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return clone.git("rev-parse", "refs/robust/tmp").stdout.strip()


def commit_stream(parent: str, files: dict[str, bytes], message: bytes = b"robustness"
                  ) -> bytes:
    out = [b"commit refs/robust/tmp\ncommitter t <t@example.org> 1700000000 +0000\n",
           b"data %d\n%s\nfrom %s\n" % (len(message), message, parent.encode())]
    for path, data in files.items():
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    return b"".join(out)


def peak_rss_hook(server: Server, log: Path) -> None:
    """Wrap the installed hook so the peak memory of its process tree lands in ``log``."""
    hook = server.path / "hooks" / "pre-receive"
    real = hook.with_name("pre-receive.real")
    hook.rename(real)
    hook.write_text(
        f"#!{sys.executable}\n"
        "import resource, subprocess, sys\n"
        f"rc = subprocess.call([{str(real)!r}])\n"
        f"open({str(log)!r}, 'w').write(str(resource.getrusage("
        "resource.RUSAGE_CHILDREN).ru_maxrss))\n"
        "sys.exit(rc)\n"
    )
    hook.chmod(0o755)


# -- size -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_push_of_10000_environment_files_is_judged_in_time(server: Server,
                                                             clone: Clone) -> None:
    """An import of 10,000 new environments in one commit. Within the production deadline
    the hook either accepts it or refuses it for the deadline alone, never hangs; given
    time (the fixture's 60 s) it accepts it: the content is valid."""
    parent = clone.git("rev-parse", "HEAD").stdout.strip()
    body = env_yaml({"v1": {"dependencies": ["python=3.11", "numpy"]},
                     "stable": {"points_to": "v1"}}, owners=["bulk"]).encode()
    files = {f"envs/bulk/ns{i // 500}/env{i}.yaml": body for i in range(10_000)}
    tip = fast_import(clone, commit_stream(parent, files, b"Import 10,000 environments"))
    push = timed_push(clone, f"{tip}:main", env=DEADLINE)
    if not push.accepted:
        assert push.rules == ["deadline"], push.stderr
        push = timed_push(clone, f"{tip}:main")
    assert push.accepted, push.stderr
    assert server.head() == tip


def test_a_push_of_10000_stray_files_is_refused_with_a_bounded_report(server: Server,
                                                                      clone: Clone) -> None:
    """10,000 files outside envs/ and locks/: refused, the report capped at 50 lines."""
    before = server.head()
    parent = clone.git("rev-parse", "HEAD").stdout.strip()
    files = {f"junk/f{i}.txt": b"x\n" for i in range(10_000)}
    push = timed_push(clone, f"{fast_import(clone, commit_stream(parent, files))}:main",
                      env=DEADLINE)
    refused(push, "path-not-allowed")
    assert len(push.refusals) == 51 and push.refusals[-1] == (
        "envctl: ... and 9950 more problems"), push.refusals[-3:]
    assert server.head() == before


@pytest.mark.parametrize("path", ["envs/team/big.yaml", "locks/team/app/v9.conda-lock.yml",
                                  "docs/big.bin"])
def test_a_100_mb_blob_is_refused_by_its_size_without_being_read(
    server: Server, clone: Clone, tmp_path: Path, path: str
) -> None:
    """The hook asks git for the blob's size and refuses it; it never reads the 100 MB (its
    peak memory stays far below the blob's size)."""
    big = tmp_path / "big"
    with open(big, "wb") as fh:  # sparse: instant to make; git compresses zeros to ~100 kB
        fh.truncate(100 * 1024 * 1024)
    blob = git(clone.path, "hash-object", "-w", str(big)).stdout.strip()
    clone.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    clone.git("commit", "--quiet", "-m", "A big file")
    log = tmp_path / "peak"
    peak_rss_hook(server, log)
    before = server.head()
    push = timed_push(clone, env=DEADLINE)
    refused(push, "file-too-large")
    assert server.head() == before
    peak_mb = int(log.read_text()) / 1024
    assert peak_mb < 90, f"the hook's peak memory was {peak_mb:.0f} MB: it read the blob"


# -- content and names ----------------------------------------------------------------------


def test_a_binary_file_in_envs_is_refused(server: Server, clone: Clone) -> None:
    clone.write("envs/team/tool.yaml", bytes(range(256)) * 4)
    clone.write("envs/team/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    clone.commit("Binary files")
    push = timed_push(clone, env=DEADLINE)
    refused(push, "not-text")
    assert "invalid-name" in push.rules  # logo.png is not an environment file
    assert any("envs/team/tool.yaml" in line for line in push.refusals)


def test_renaming_an_environment_file_to_another_case_is_refused(server: Server,
                                                                 clone: Clone) -> None:
    """app.yaml -> App.yaml deletes an environment with a frozen tag and adds an invalid
    name; on a case-insensitive checkout the two would even be the same file."""
    clone.git("mv", ENV, "envs/team/App.yaml")
    clone.commit("Rename to App")
    push = timed_push(clone, env=DEADLINE)
    refused(push, "frozen-tag")
    assert "invalid-name" in push.rules


@pytest.mark.parametrize("path", ["envs/team/app.YAML", "envs/Team/app.yaml",
                                  "envs/team/APP.yaml"])
def test_a_second_spelling_of_an_existing_environment_is_refused(server: Server, clone: Clone,
                                                                 path: str) -> None:
    clone.write(path, clone.read(ENV))
    clone.commit("Another spelling")
    refused(timed_push(clone, env=DEADLINE), "invalid-name")


def test_a_near_duplicate_name_is_refused(server: Server, clone: Clone) -> None:
    """my_app next to my-app: the same name once '-', '_' and '.' are folded."""
    clone.write("envs/team/my-app.yaml", clone.read(ENV))
    clone.commit("Add my-app")
    assert timed_push(clone, env=DEADLINE).accepted
    clone.write("envs/team/my_app.yaml", clone.read(ENV))
    clone.commit("Add my_app")
    refused(timed_push(clone, env=DEADLINE), "name-collision")


@pytest.mark.parametrize("tag", ["v\u04302", "st\u0430ble", "\u0455table", "v\uff12"])
def test_a_tag_named_with_unicode_look_alikes_is_refused(server: Server, clone: Clone,
                                                         tag: str) -> None:
    """Cyrillic 'а' and 'ѕ', a full-width digit: refused, with the ASCII spelling offered."""
    clone.edit_tags(**{tag: {"dependencies": ["numpy"]}})
    clone.commit("Look-alike tag")
    push = timed_push(clone, env=DEADLINE)
    refused(push, "schema")
    assert any("non-ASCII" in line for line in push.refusals), push.refusals


def test_an_environment_path_with_a_look_alike_is_refused(server: Server, clone: Clone) -> None:
    clone.write("envs/t\u0435am/app.yaml", clone.read(ENV))  # Cyrillic 'е'
    clone.commit("Look-alike namespace")
    push = timed_push(clone, env=DEADLINE)
    refused(push, "invalid-name")


def test_look_alike_branch_and_tag_refs_do_not_touch_main(server: Server, clone: Clone) -> None:
    """A branch 'mаin' (Cyrillic 'а') is another branch: not policed, and main is unchanged;
    policy protects the configured branch by its exact name."""
    before = server.head()
    clone.edit_tags(v1={"dependencies": ["rewritten"]})  # would break the frozen rule on main
    sha = clone.commit("Look-alike branch")
    assert timed_push(clone, "HEAD:refs/heads/m\u0430in", env=DEADLINE).accepted
    assert timed_push(clone, "HEAD:refs/tags/v\u04301", env=DEADLINE).accepted
    assert server.head() == before
    assert server.head("refs/heads/m\u0430in") == sha


# -- commit objects ---------------------------------------------------------------------------


def literal_commit(clone: Clone, tree: str, parent: str, raw_header: bytes,
                   message: bytes) -> str:
    """A commit object written byte for byte (git would re-encode or refuse what we want)."""
    body = b"tree %s\nparent %s\n%s\n%s" % (tree.encode(), parent.encode(), raw_header, message)
    proc = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
                          cwd=clone.path, input=body, capture_output=True, check=True)
    return proc.stdout.decode().strip()


BAD_ENCODING = (
    b"author \xff\xfe Mallory \xc3\x28 <m\xe9@example.org> 1700000000 +0000\n"
    b"committer \xc0\xaf <\xff@example.org> 1700000000 +0000\n"
    b"encoding no-such-charset\n"
)


def test_a_commit_with_an_invalid_encoding_is_judged_on_its_content(server: Server,
                                                                   clone: Clone) -> None:
    """Author, committer and message bytes that are not UTF-8 (and an encoding git does
    not know) do not upset the hook: a valid change is accepted..."""
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("placeholder")
    tree = clone.git("rev-parse", "HEAD^{tree}").stdout.strip()
    parent = clone.git("rev-parse", "HEAD~1").stdout.strip()
    sha = literal_commit(clone, tree, parent, BAD_ENCODING, b"Add v3 \xff\xfe\x00 \xe9t\xe9\n")
    push = timed_push(clone, f"{sha}:main", env=DEADLINE)
    assert push.accepted, push.stderr
    assert server.head() == sha


def test_a_commit_with_an_invalid_encoding_is_still_refused_for_what_it_does(
    server: Server, clone: Clone
) -> None:
    """... and a lock written by such a commit is refused as unsigned, with a clean line."""
    clone.write(LOCK, clone.read(LOCK) + "# edited\n")
    clone.commit("placeholder")
    tree = clone.git("rev-parse", "HEAD^{tree}").stdout.strip()
    parent = clone.git("rev-parse", "HEAD~1").stdout.strip()
    sha = literal_commit(clone, tree, parent, BAD_ENCODING, b"\xff\n")
    push = timed_push(clone, f"{sha}:main", env=DEADLINE)
    refused(push, "frozen-lock")
    assert "unsigned-lock" in push.rules


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_pushes_to_main_one_wins_cleanly(server: Server) -> None:
    """Two people push to main at the same moment, both from the same tip: git's ref lock
    (or the client's fetch-first check) lets exactly one through; the other is refused
    cleanly and main is the winner's commit."""
    first, second = server.clone("first"), server.clone("second")
    before = server.head()
    shas = []
    for clone, tag in ((first, "v3"), (second, "v4")):
        clone.edit_tags(**{tag: {"dependencies": ["numpy"]}})
        shas.append(clone.commit(f"Add {tag}"))
    results: dict[str, Push] = {}
    barrier = threading.Barrier(2)

    def push(name: str, clone: Clone) -> None:
        barrier.wait()
        results[name] = timed_push(clone, env=DEADLINE)

    threads = [threading.Thread(target=push, args=(n, c))
               for n, c in (("first", first), ("second", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
    winners = [n for n, p in results.items() if p.returncode == 0]
    assert len(results) == 2 and len(winners) == 1, {n: p.stderr for n, p in results.items()}
    loser = results["second" if winners == ["first"] else "first"]
    assert "Traceback" not in loser.stderr and "internal" not in loser.stderr
    assert server.head() == shas[0 if winners == ["first"] else 1]
    assert git(server.path, "merge-base", "--is-ancestor", before, server.head()).returncode == 0


def test_the_hook_refuses_rather_than_hangs(server: Server, clone: Clone) -> None:
    """A push the hook cannot finish judging in its deadline is refused, in about that time."""
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    clone.commit("Add v3")
    start = time.monotonic()
    push = timed_push(clone, env={"ENVCTL_HOOK_DEADLINE": "0.2"})
    assert time.monotonic() - start < HANG
    if push.returncode != 0:  # on a fast machine the check may finish within 0.2 s
        refused(push, "deadline")
