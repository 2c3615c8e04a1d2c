"""Browser fixtures: a real `happysad serve` process on Redis + PostgreSQL, and Debian's
chromium driven by Playwright (never `playwright install`: that downloads a browser)."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.processes import free_port, stop_process
from tests.helpers.browser import TOKEN
from tests.helpers.services import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def live_server(monkeypatch, postgres, redis_url, isolated_env, registered_model) -> str:
    """`happysad serve` on a free loopback port, with a write token; its base URL."""
    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    port = free_port()
    log_path = Path(isolated_env) / "logs" / "web.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:  # the server writes through its own copy of the handle
        server = subprocess.Popen([sys.executable, "-m", "happysad.cli", "serve", "--port",
                                   str(port)], stdout=log, stderr=subprocess.STDOUT,
                                  env=dict(os.environ), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/api/v1/jobs", timeout=5)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                stop_process(server)
                raise AssertionError(f"happysad serve did not start:\n{log_path.read_text()}")
            time.sleep(0.3)
    yield url
    stop_process(server)


@pytest.fixture
def browser_page():
    """A fresh Chromium page; dialogs (an alert() from injected markup) are recorded."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: `make chromium` installs it"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.set_default_timeout(60_000)
        yield page
        browser.close()
