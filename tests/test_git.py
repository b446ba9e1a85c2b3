"""envctl.git's BlobReader: many files of a revision through one ``git cat-file`` process."""

from __future__ import annotations

import subprocess
from pathlib import Path

from envctl.git import BlobReader


def test_read_many_answers_what_read_answers(tmp_path: Path, git_env: Path) -> None:
    """In order, in batches (more requests than fit one batch), with missing paths, trees
    and empty files answered as one read at a time answers them."""
    for i in range(300):
        path = tmp_path / "files" / f"dir-{i % 7}" / f"file-{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content {i}\n" * (i % 5))
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-q", "-m", "files"], check=True)
    names = [f"HEAD:files/dir-{i % 7}/file-{i}.txt" for i in range(300)]
    names[10:10] = ["HEAD:files/missing.txt", "HEAD:files/dir-1", "no-such-rev:x"]
    one_by_one = BlobReader(tmp_path)
    want = [one_by_one.read(name) for name in names]
    assert want[10:13] == [None, None, None]
    assert want[0] == b"" and want[1] == b"content 1\n"
    many = BlobReader(tmp_path)
    assert many.read_many(names) == want
    assert many.read(names[-1]) == want[-1]  # the process still answers single reads


def test_a_name_git_would_split_is_never_sent(tmp_path: Path, git_env: Path) -> None:
    """A path with a newline would be two requests to cat-file and every later answer
    would belong to the wrong file (found by review); undecodable bytes are sent as is."""
    (tmp_path / "a").write_text("A")
    (tmp_path / "c").write_text("C")
    odd = tmp_path / b"caf\xe9".decode("utf-8", "surrogateescape")
    odd.write_bytes(b"odd")
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-q", "-m", "files"], check=True)
    reader = BlobReader(tmp_path)
    names = ["HEAD:a", "HEAD:a\nHEAD:c", "HEAD:a\r", f"HEAD:{odd.name}", "HEAD:c"]
    assert reader.read_many(names) == [b"A", None, None, b"odd", b"C"]
    assert [reader.read(name) for name in names] == [b"A", None, None, b"odd", b"C"]
