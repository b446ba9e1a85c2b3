"""A real headless browser for tests: Debian's chromium driven by selenium.

``headless_chromium()`` starts ``/usr/bin/chromium`` through ``/usr/bin/chromedriver``
(the Debian packages ``chromium`` and ``chromium-driver``; ``.ci/run`` installs them),
with a fresh profile in a temporary folder and everything that would reach the network
on its own turned off. It never downloads a browser or a driver (selenium-manager is
not used): when either binary is missing it raises :class:`BrowserMissing` with the
command that installs it, so a test fails loudly instead of skipping.

Override the paths with ``ENVCTL_CHROMIUM`` and ``ENVCTL_CHROMEDRIVER``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install -y chromium chromium-driver (and pip install selenium)"

#: Flags for a quiet, offline, reproducible browser in a container.
FLAGS = (
    "--headless",
    "--no-sandbox",  # containers and CI runners often lack the user namespaces it needs
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # /dev/shm is tiny in docker; use /tmp instead
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--window-size=1280,900",
)


class BrowserMissing(RuntimeError):
    """chromium, chromedriver or selenium is not installed."""


def _binary(env_var: str, default: str, what: str) -> str:
    path = os.environ.get(env_var) or default
    found = shutil.which(path) if not os.path.isabs(path) else (path if os.path.exists(path)
                                                                   else None)
    if found is None:
        raise BrowserMissing(f"{what} not found at {path}: install it with {INSTALL_HINT}")
    return found


@contextmanager
def headless_chromium(*, window: tuple[int, int] = (1280, 900)) -> Iterator[WebDriver]:
    """A selenium ``WebDriver`` for a headless chromium with a throw-away profile."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserMissing(f"selenium is not installed ({exc}): {INSTALL_HINT}") from None

    browser = _binary("ENVCTL_CHROMIUM", CHROMIUM, "chromium")
    driver_path = _binary("ENVCTL_CHROMEDRIVER", CHROMEDRIVER, "chromedriver")
    profile = Path(tempfile.mkdtemp(prefix="envctl-chromium-"))
    options = Options()
    options.binary_location = browser
    for flag in FLAGS:
        if not flag.startswith("--window-size"):
            options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--user-data-dir={profile}")
    # Explicit driver path: selenium-manager would otherwise try to download one.
    service = Service(executable_path=driver_path, log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
