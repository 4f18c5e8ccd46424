"""Look at the built website the way a reader does: in headless Chromium, over HTTP.

Debian's ``chromium`` and ``chromium-driver`` packages are installed by the test setup
(``make test``: ``.ci/install-browser``). The site is served from a local HTTP server in a
thread, since browsers keep pages opened from ``file://`` from loading the search index.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without these flags Chromium tries to reach Google's services at every start; the machine has no network.
_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
          "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-extensions", "--window-size=1280,1600"]


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing: run .ci/install-browser (Debian packages chromium and chromium-driver)"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free localhost port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium driven by Selenium, with a throw-away profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# Run in the page: what a reader would notice. Images count as rendered once decoded with a size.
PAGE_REPORT_JS = """
const main = document.querySelector('main') || document.body;
const text = main.innerText;
const images = Array.from(main.querySelectorAll('img'));
return {
  title: document.title,
  traceback: text.includes('Traceback (most recent call last)'),
  errorOutputs: main.querySelectorAll('.output.error, .output.traceback, .output_error, div.stderr').length,
  images: images.length,
  renderedImages: images.filter(i => i.complete && i.naturalWidth > 0).length,
  brokenImages: images.filter(i => i.complete && i.naturalWidth === 0).map(i => i.getAttribute('src')),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  colab: Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]')).map(a => a.href),
  width: document.documentElement.scrollWidth,
};
"""
