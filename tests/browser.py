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
# The reader is offline: every host name fails to resolve and every other address goes to a closed
# proxy port, except the local server the test starts. A page that still needs the network (a CDN's
# MathJax, a web font) then breaks visibly, and the request log names what it asked for.
_OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1"]


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
    """A headless Chromium driven by Selenium, with a throw-away profile and no network but localhost.

    ``requested_urls(driver)`` returns what the pages asked for since the last call."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*_FLAGS, *_OFFLINE, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
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
  // alt text that names a file (docutils' default is the image's path) says nothing about the figure
  badAlt: images.filter(i => { const alt = (i.getAttribute('alt') || '').trim();
    return alt.length < 10 || /\\.(png|jpe?g|gif|svg)$/i.test(alt) || alt.includes('_images/'); })
    .map(i => i.getAttribute('src')),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  colab: Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]')).map(a => a.href),
  width: document.documentElement.scrollWidth,
};
"""


def requested_urls(driver) -> list[str]:
    """The URLs requested since the last call (Chromium's performance log, drained by reading it)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


# Wait for MathJax (where the page loads it) to finish typesetting, then report on the page's math.
# Sphinx writes every formula as a .math element holding its TeX between \( \) or \[ \]; MathJax
# replaces the TeX by an <mjx-container>. Text outside code that still shows a delimiter is raw LaTeX.
MATH_REPORT_JS = r"""
const done = arguments[arguments.length - 1];
const report = () => {
  const main = document.querySelector('main') || document.body;
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, textarea, mjx-container').forEach(e => e.remove());
  const text = prose.textContent;
  const raw = ['\\(', '\\[', '$$'].filter(d => text.includes(d))
    .map(d => d + ' ...' + text.slice(Math.max(0, text.indexOf(d) - 40), text.indexOf(d) + 60).replace(/\s+/g, ' '));
  const formulas = Array.from(main.querySelectorAll('.math'));
  done({
    mathjax: typeof window.MathJax === 'object' && !!window.MathJax.startup,
    mathjaxSrc: Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s)),
    formulas: formulas.length,
    typeset: main.querySelectorAll('mjx-container').length,
    untypeset: formulas.filter(f => !f.querySelector('mjx-container')).length,
    errors: Array.from(main.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error') || e.textContent),
    raw: raw,
  });
};
if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
  window.MathJax.startup.promise.then(report, e => done({error: String(e)}));
} else if (document.querySelector('.math')) {
  setTimeout(report, 5000);  // MathJax did not load (yet): report what the reader sees
} else {
  report();
}
"""


def axe_source() -> str:
    """axe-core, the accessibility checker, as shipped by the axe-selenium-python package."""
    import axe_selenium_python

    return (Path(axe_selenium_python.__file__).parent / "node_modules" / "axe-core" / "axe.min.js").read_text()


# axe-core's WCAG 2.0 and 2.1 level A and AA rules on the whole page; the violations, each with the
# first few elements it found.
AXE_RUN_JS = r"""
const done = arguments[arguments.length - 1];
const known = new Set([].concat(...axe.getRules().map(r => r.tags)));  // older axe-core has no wcag21a rules
const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'].filter(t => known.has(t));
axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']},
  (error, results) => done(error ? {error: String(error)} : results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\n').slice(0, 2).join(' ')),
  }))));
"""
