"""``envctl site``: the static HTML catalog, checked as files and in a real headless chromium.

The browser test never skips: without chromium, chromedriver or selenium it fails with
the command that installs them (``.ci/run`` does).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.catalog import Catalog, WorkTreeSource
from envctl.errors import EnvctlError
from envctl.report.site import build_site
from envctl.resolve.lockfile import read_lock

from .conftest import ReportRepo


def invoke(*args: str) -> tuple[int, str]:
    from envctl.cli.main import app

    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def site(report_repo: ReportRepo, tmp_path: Path) -> Path:
    out = tmp_path / "site"
    build_site(Catalog(WorkTreeSource(report_repo.root)), out)
    return out


@pytest.mark.slow
def test_pages_and_escaping(site: Path, report_repo: ReportRepo) -> None:
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")) == [
        "envs/team/app.html", "envs/vision/train.html", "index.html"]
    index = (site / "index.html").read_text()
    # The description holds markup: it is shown as text, never as HTML.
    assert "GPU training &lt;b&gt;for&lt;/b&gt; vision &amp; &#34;friends&#34;" in index
    assert "<b>for</b>" not in index
    for page in site.rglob("*.html"):
        html = page.read_text()
        # Self-contained: nothing loaded from elsewhere, so it works from file://.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page
        assert "<link " not in html and "<script src" not in html
    app = (site / "envs/team/app.html").read_text()
    v2 = read_lock(report_repo.lock("v2").read_bytes())
    env_id = f"{v2.req_id('linux-64')}:{v2.recorded_full_id('linux-64')}"
    assert f'<code class="env-id">{env_id}</code>' in app
    assert "envctl create team/app:v2 --name team-app-v2" in app
    assert f"envctl create {env_id} --prefix ./env" in app
    assert 'href="../../index.html"' in app
    # The pointer's history on main, newest first, with authors.
    history = app[app.index("History on main"):]
    assert [m for m in re.findall(r"<td>(created|moved)</td>", history)] == [
        "moved", "moved", "created"]
    assert "Carol Coder" in history and "Bob Builder" in history
    # The diff against the version before.
    assert "Changes since team/app:v1" in app
    assert "conda 1 added, 2 upgraded, 1 rebuilt (linux-64 only); pypi 1 upgraded" in app


@pytest.mark.slow
def test_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from envctl.testing.browser import headless_chromium

    with headless_chromium() as browser:
        browser.get((site / "index.html").as_uri())
        assert browser.title == "Test catalog"
        rows = {r.find_element(By.CSS_SELECTOR, "a").text: r
                for r in browser.find_elements(By.CSS_SELECTOR, "tr.env-row")}
        assert set(rows) == {"team/app", "vision/train"}
        assert all(r.is_displayed() for r in rows.values())
        count = browser.find_element(By.ID, "count")
        box = browser.find_element(By.ID, "filter")

        box.send_keys("gpu")
        assert not rows["team/app"].is_displayed()
        assert rows["vision/train"].is_displayed()
        team = browser.find_element(By.CSS_SELECTOR, 'section[data-namespace="team"]')
        assert not team.is_displayed()  # a namespace with no match folds away
        assert count.text == "1 of 2 environments"

        box.clear()
        box.send_keys("zzz nothing")
        assert not any(r.is_displayed() for r in rows.values())
        assert browser.find_element(By.ID, "nothing").is_displayed()

        box.clear()
        box.send_keys("team stable")  # every word must match: name and a tag
        assert rows["team/app"].is_displayed() and not rows["vision/train"].is_displayed()
        browser.save_screenshot(str(tmp_path / "index.png"))

        rows["team/app"].find_element(By.CSS_SELECTOR, "a").click()
        assert browser.title == "team/app · Test catalog"
        assert browser.find_element(By.ID, "env-name").text == "team/app"

        v2 = browser.find_element(By.ID, "tag-v2")
        linux = v2.find_element(By.CSS_SELECTOR, 'table.packages[data-platform="linux-64"]')
        assert linux.is_displayed()  # the first platform of a locked tag starts open
        packages = {tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td"))
                    for tr in linux.find_elements(By.CSS_SELECTOR, "tbody tr")}
        assert ("torchlet", "1.0", "cuda_1", "conda") in packages
        assert ("itsdangerous", "2.2.0", "", "pypi") in packages
        assert len(packages) == 8

        osx = v2.find_element(By.CSS_SELECTOR, 'table.packages[data-platform="osx-arm64"]')
        assert not osx.is_displayed()
        v2.find_element(By.CSS_SELECTOR, 'details[data-platform="osx-arm64"] summary').click()
        assert osx.is_displayed()
        osx_rows = [tr.text for tr in osx.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert any(r.startswith("torchlet 1.0 cpu_0") for r in osx_rows)

        diff = v2.find_element(By.CSS_SELECTOR, "table.diff")
        assert "⟳ rebuilt" in diff.text and "cuda_1" in diff.text

        # Back to the index through the header link; a whole-page screenshot to look at.
        browser.find_element(By.CSS_SELECTOR, "a.brand").click()
        assert browser.title == "Test catalog"
        browser.back()
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, min(height + 120, 8000))
        shot = tmp_path / "env-page.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        assert severe == []


def test_no_git_no_history(tmp_path: Path) -> None:
    """A catalog that is not in git still gets a site, just without tag history."""
    root = tmp_path / "cat"
    (root / "envs/a").mkdir(parents=True)
    (root / "catalog.yaml").write_text("channels: {main: 'https://conda.example.org/m'}\n")
    (root / "envs/a/b.yaml").write_text(
        "description: x\ntags:\n  v1: {dependencies: [python]}\n  stable: {points_to: v1}\n")
    result = build_site(Catalog(WorkTreeSource(root)), tmp_path / "out")
    assert result.envs == 1
    page = (tmp_path / "out/envs/a/b.html").read_text()
    assert "History on" not in page
    assert "Not locked yet" in page


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cat"
    (root / "envs").mkdir(parents=True)
    (root / "catalog.yaml").write_text("channels: {main: 'https://conda.example.org/m'}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(EnvctlError, match="holds files envctl did not write"):
        build_site(Catalog(WorkTreeSource(root)), out)
    assert (out / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    shutil.rmtree(out)
    monkeypatch.chdir(root)
    code, output = invoke("site", str(out), "--quiet")
    assert code == 0 and output == ""
    code, output = invoke("site", str(out))  # a site it wrote may be replaced
    assert code == 0 and output.startswith("wrote 1 pages (0 environments)")
    code, output = invoke("site", str(out), "--json")
    assert json.loads(output) == {"outdir": str(out.resolve()), "pages": 1, "envs": 0}
