"""The built website in a real browser (headless Chromium): what a reader sees on every page."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag

import pytest

from browser import PAGE_REPORT_JS, browser_missing, chromium, serve
from notebooks import REPO, chapter_notebooks, exercise_notebooks, github_repository, toc_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]

SCREENSHOTS = REPO / "_build" / "screenshots"


@pytest.fixture(scope="module")
def browsed(site):
    """Every page of the table of contents, loaded in Chromium: page path -> what the page showed."""
    problem = browser_missing()
    assert problem is None, problem
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    reports = {}
    with serve(site / "html") as base, chromium() as driver:
        for entry in toc_files():
            page = f"{entry}.html"
            driver.get(f"{base}/{page}")
            driver.execute_async_script(  # wait until every image that started loading has finished
                "const done = arguments[arguments.length - 1];"
                "Promise.all(Array.from(document.images).filter(i => !i.complete)"
                ".map(i => new Promise(r => { i.onload = i.onerror = r; }))).then(() => done());")
            reports[page] = driver.execute_script(PAGE_REPORT_JS)
        chapter, exercise = chapter_notebooks()[3], exercise_notebooks()[3]
        for name, path in (("chapter", chapter), ("exercise", exercise)):
            driver.get(f"{base}/{path.relative_to(REPO).with_suffix('.html').as_posix()}")
            driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        driver.set_window_size(390, 844)  # a phone
        driver.get(f"{base}/{chapter.relative_to(REPO).with_suffix('.html').as_posix()}")
        driver.save_screenshot(str(SCREENSHOTS / "chapter-phone.png"))
        reports["phone"] = driver.execute_script(PAGE_REPORT_JS)
        reports["search"] = search_results(driver, base, "attention")
        reports["base"] = base
        reports["broken_links"] = broken_links(base, {link for r in reports.values() if isinstance(r, dict)
                                                       for link in r.get("links", [])})
    return reports


def search_results(driver, base: str, query: str) -> list[str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/search.html?q={query}")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li")
                                    or "did not match" in d.find_element(By.ID, "search-results").text)
    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#search-results li")]


def broken_links(base: str, links: set[str]) -> list[str]:
    """Links into the site that do not load (other sites are not checked: no network)."""
    broken = []
    for link in sorted({urldefrag(link)[0] for link in links}):
        if not link.startswith(base):
            continue
        try:
            with urllib.request.urlopen(link, timeout=10) as response:
                if response.status != 200:
                    broken.append(f"{link} ({response.status})")
        except urllib.error.URLError as error:
            broken.append(f"{link} ({error})")
    return broken


def _chapter_pages() -> list[str]:
    return [p.relative_to(REPO).with_suffix(".html").as_posix() for p in chapter_notebooks()]


def test_no_page_shows_an_error_or_a_traceback(browsed):
    for page in (f"{entry}.html" for entry in toc_files()):
        report = browsed[page]
        assert not report["traceback"], f"{page} shows a Python traceback"
        assert report["errorOutputs"] == 0, f"{page} shows {report['errorOutputs']} error outputs"
        assert not report["brokenImages"], f"{page} has images that do not load: {report['brokenImages']}"


@pytest.mark.parametrize("page", _chapter_pages())
def test_every_chapter_page_renders_a_figure(browsed, page):
    assert browsed[page]["renderedImages"] >= 1, f"{page}: no figure was rendered ({browsed[page]['images']} <img>)"


def test_navigation_links_resolve(browsed):
    assert not browsed["broken_links"], f"links that do not load: {browsed['broken_links'][:10]}"


def test_search_finds_the_attention_chapters(browsed):
    results = browsed["search"]
    assert results, "searching the site for 'attention' found nothing (is the search index loading?)"
    assert any("attention" in r.lower() for r in results), results[:5]


def test_exercise_pages_link_to_their_notebook_in_colab(browsed):
    repo, branch = github_repository()
    for path in exercise_notebooks():
        page = path.relative_to(REPO).with_suffix(".html").as_posix()
        expected = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path.relative_to(REPO).as_posix()}"
        assert expected in browsed[page]["colab"], f"{page}: Colab links {browsed[page]['colab']}, expected {expected}"


def test_screenshots_are_written(browsed):
    for name in ("chapter", "exercise", "chapter-phone"):
        shot = SCREENSHOTS / f"{name}.png"
        assert shot.exists() and shot.stat().st_size > 10_000, f"{shot} missing or blank"


def test_a_chapter_fits_a_phone_screen(browsed):
    # code cells and wide figures scroll inside their own boxes; the page itself must not
    assert browsed["phone"]["width"] <= 400, f"the page is {browsed['phone']['width']} px wide on a 390 px screen"


def test_browser_test_reads_the_built_site(site):
    assert Path(site / "html" / "index.html").exists()
