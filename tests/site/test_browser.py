"""The built website in a real browser (headless Chromium): what a reader sees on every page.

The browser has no network but the local server (tests/browser.py), as a reader offline would:
every formula must still be typeset, no page may ask another host for anything, axe-core finds no
serious WCAG 2.1 A/AA problem, and the interactive figures respond to their controls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag

import pytest

from browser import AXE_RUN_JS, MATH_REPORT_JS, PAGE_REPORT_JS, axe_source, browser_missing, chromium, requested_urls, serve
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
    axe = axe_source()
    with serve(site / "html") as base, chromium() as driver:
        driver.set_script_timeout(120)
        for entry in toc_files():
            page = f"{entry}.html"
            driver.get(f"{base}/{page}")
            driver.execute_async_script(  # wait until every image that started loading has finished
                "const done = arguments[arguments.length - 1];"
                "Promise.all(Array.from(document.images).filter(i => !i.complete)"
                ".map(i => new Promise(r => { i.onload = i.onerror = r; }))).then(() => done());")
            reports[page] = driver.execute_script(PAGE_REPORT_JS)
            reports[page]["math"] = driver.execute_async_script(MATH_REPORT_JS)
            driver.execute_script(axe)
            reports[page]["axe"] = driver.execute_async_script(AXE_RUN_JS)
            reports[page]["requests"] = requested_urls(driver)
        chapter, exercise = chapter_notebooks()[3], exercise_notebooks()[3]
        for name, path in (("chapter", chapter), ("exercise", exercise)):
            driver.get(f"{base}/{path.relative_to(REPO).with_suffix('.html').as_posix()}")
            driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        reports["interactive"] = play_with_figures(driver, base)
        _screenshot_math(driver, base, chapter, "chapter-math.png")
        driver.set_window_size(390, 844)  # a phone
        driver.get(f"{base}/{chapter.relative_to(REPO).with_suffix('.html').as_posix()}")
        driver.save_screenshot(str(SCREENSHOTS / "chapter-phone.png"))
        reports["phone"] = driver.execute_script(PAGE_REPORT_JS)
        _screenshot_math(driver, base, chapter, "chapter-math-phone.png")
        reports["search"] = search_results(driver, base, "attention")
        reports["base"] = base
        reports["broken_links"] = broken_links(base, {link for r in reports.values() if isinstance(r, dict)
                                                       for link in r.get("links", [])})
    return reports


def _screenshot_math(driver, base: str, chapter: Path, name: str) -> None:
    """A screenshot of the chapter's first displayed formula, once MathJax has typeset it."""
    driver.get(f"{base}/{chapter.relative_to(REPO).with_suffix('.html').as_posix()}")
    driver.execute_async_script(MATH_REPORT_JS)
    driver.execute_script("const m = document.querySelector('mjx-container[display=\"true\"]');"
                          "if (m) { m.scrollIntoView({block: 'center'}); }")
    driver.save_screenshot(str(SCREENSHOTS / name))


def play_with_figures(driver, base: str) -> dict:
    """Use chapter 7's sampling explorer and chapter 4's attention map as a reader would."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    bars = ("return Array.from(arguments[0].querySelectorAll('rect.lf-bar-final')).map(r => "
            "[r.parentNode.querySelector('text.lf-word[data-slot=\"' + r.dataset.slot + '\"]').textContent, "
            "Number(r.dataset.p), Number(r.getAttribute('height'))]);")
    result = {}
    driver.get(f"{base}/book/07_token_sampling.html")
    figure = driver.find_element(By.CSS_SELECTOR, "figure[data-lf-figure=sampling]")
    sampling = {"live": figure.get_attribute("data-live"), "before": driver.execute_script(bars, figure),
                "data": driver.execute_script("return JSON.parse(arguments[0].querySelector('script.lf-data').textContent);", figure)}
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", figure)
    slider = figure.find_element(By.CSS_SELECTOR, "input[name=temperature]")
    slider.send_keys(*[Keys.ARROW_LEFT] * 30)  # log10 T from 0 to -0.3: T = 0.5
    figure.find_element(By.CSS_SELECTOR, "input[name=top_k]").send_keys(*[Keys.ARROW_RIGHT] * 3)  # top-k = 3
    sampling["after"] = driver.execute_script(bars, figure)
    sampling["state"] = figure.get_attribute("data-state")
    sampling["summary"] = figure.find_element(By.CSS_SELECTOR, ".lf-summary").text
    Select(figure.find_element(By.CSS_SELECTOR, "select[name=context]")).select_by_value("saw")
    sampling["saw"] = driver.execute_script(bars, figure)
    sampling["saw_state"] = figure.get_attribute("data-state")
    driver.save_screenshot(str(SCREENSHOTS / "sampling-explorer.png"))
    result["sampling"] = sampling

    driver.get(f"{base}/book/04_self_attention.html")
    figure = driver.find_element(By.CSS_SELECTOR, "figure[data-lf-figure=attention]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", figure)
    shades = ("return Array.from(arguments[0].querySelectorAll('.lf-key')).map(s => getComputedStyle(s).backgroundColor);")
    attention = {"live": figure.get_attribute("data-live"), "query_before": figure.get_attribute("data-query"),
                 "shades_before": driver.execute_script(shades, figure),
                 "data": driver.execute_script("return JSON.parse(arguments[0].querySelector('script.lf-data').textContent);", figure)}
    ActionChains(driver).move_to_element(figure.find_elements(By.CSS_SELECTOR, "button.lf-query")[1]).perform()  # hover "cat"
    attention["query_hover"] = figure.get_attribute("data-query")
    attention["shades_hover"] = driver.execute_script(shades, figure)
    attention["pressed"] = [b.get_attribute("aria-pressed") for b in figure.find_elements(By.CSS_SELECTOR, "button.lf-query")]
    Select(figure.find_element(By.CSS_SELECTOR, "select[name=head]")).select_by_value("1")
    attention["head"] = figure.get_attribute("data-head")
    attention["shades_head"] = driver.execute_script(shades, figure)
    attention["summary"] = figure.find_element(By.CSS_SELECTOR, ".lf-summary").text
    driver.save_screenshot(str(SCREENSHOTS / "attention-explorer.png"))
    result["attention"] = attention
    return result


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


def _pages() -> list[str]:
    return [f"{entry}.html" for entry in toc_files()]


def test_no_page_requests_anything_from_another_host(browsed):
    """Offline, a page that needs a CDN (MathJax, require.js, a font) breaks: everything is served locally."""
    for page in _pages():
        outside = sorted({u for u in browsed[page]["requests"]  # (data:, blob: and chrome: URLs never leave the browser)
                          if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:")) and not u.startswith(browsed["base"])})
        assert not outside, f"{page} asked other hosts for {outside[:5]}: serve them from the site's _static instead"


def test_every_formula_is_typeset_offline(browsed):
    pages_with_math = 0
    for page in _pages():
        math = browsed[page]["math"]
        assert "error" not in math, f"{page}: MathJax failed: {math}"
        if math["formulas"]:
            pages_with_math += 1
            assert math["mathjax"], f"{page} has {math['formulas']} formulas but MathJax did not load ({math['mathjaxSrc']})"
            assert all(src.startswith(browsed["base"]) for src in math["mathjaxSrc"]), math["mathjaxSrc"]
        assert math["untypeset"] == 0, f"{page}: {math['untypeset']} of {math['formulas']} formulas were not typeset"
        assert not math["errors"], f"{page}: MathJax could not typeset {math['errors'][:3]}"
        assert not math["raw"], f"{page} shows raw LaTeX to the reader: {math['raw'][:3]}"
    assert pages_with_math >= 10, f"only {pages_with_math} pages have formulas: is the math still marked up for MathJax?"


def test_no_serious_accessibility_violation(browsed):
    """axe-core's WCAG 2.0/2.1 A and AA rules: no serious or critical violation on any page."""
    problems = []
    for page in _pages():
        axe = browsed[page]["axe"]
        assert not isinstance(axe, dict), f"{page}: axe-core did not run: {axe}"
        problems += [f"{page}: {v['id']} ({v['impact']}, {v['count']}x): {v['help']}; e.g. {v['nodes'][:2]}"
                     for v in axe if v["impact"] in ("serious", "critical")]
    assert not problems, "accessibility violations:\n" + "\n".join(problems[:15])


def test_every_figure_has_alt_text(browsed):
    for page in _pages():
        assert not browsed[page]["badAlt"], (
            f"{page}: figures without alt text that says what they show: {browsed[page]['badAlt'][:5]} "
            "(add cell metadata mystnb: image: alt: ... to the cell that draws them)")


def test_sampling_explorer_responds_to_its_sliders(browsed):
    import torch

    from llm_foundations.interactive import sampling_distribution

    sampling = browsed["interactive"]["sampling"]
    assert sampling["live"] == "true", "interactive.js did not start chapter 7's explorer"
    assert [w for w, _, _ in sampling["after"]] == [w for w, _, _ in sampling["before"]]
    assert [h for _, _, h in sampling["after"]] != [h for _, _, h in sampling["before"]], "the bars did not move"
    state = json.loads(sampling["state"])
    assert state["top_k"] == 3 and abs(state["temperature"] - 0.5) < 0.01, f"the sliders read {state}"
    assert sum(p > 0 for _, p, _ in sampling["after"]) == 3, "top-k = 3 must leave three bars"
    words = sampling["data"]["words"]
    for context, shown, state in (("the", sampling["after"], state), ("saw", sampling["saw"], json.loads(sampling["saw_state"]))):
        logits = next(c["logits"] for c in sampling["data"]["contexts"] if c["name"] == context)
        row = torch.tensor([float("-inf") if z is None else z for z in logits], dtype=torch.double)
        expected = sampling_distribution(row, state["temperature"], state["top_k"], state["top_p"])
        for word, p, _ in shown:
            assert abs(p - float(expected[words.index(word)])) < 1e-4, (
                f"after {context!r} at {state}: the page shows p({word}) = {p:.4f}, "
                f"sample_next_token samples it with {float(expected[words.index(word)]):.4f}")


def test_attention_map_follows_the_pointer(browsed):
    from llm_foundations.interactive import shade

    attention = browsed["interactive"]["attention"]
    data = attention["data"]
    assert attention["live"] == "true", "interactive.js did not start chapter 4's attention map"
    assert attention["query_before"] == str(data["query"]) and attention["query_hover"] == "1"
    assert attention["pressed"][1] == "true" and attention["pressed"].count("true") == 1
    assert attention["shades_hover"] != attention["shades_before"], "pointing at another query changed nothing"

    def rgb(hex_colour):
        return "rgb({}, {}, {})".format(*(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)))

    for head, shades in ((0, attention["shades_hover"]), (1, attention["shades_head"])):
        expected = [rgb(shade(w)[0]) for w in data["heads"][head]["weights"][1]]
        assert shades == expected, f"head {head}, query 1: keys shaded {shades}, expected {expected}"
    assert attention["head"] == "1" and data["queries"][1] in attention["summary"]


def test_screenshots_are_written(browsed):
    for name in ("chapter", "exercise", "chapter-phone", "chapter-math", "chapter-math-phone",
                 "sampling-explorer", "attention-explorer"):
        shot = SCREENSHOTS / f"{name}.png"
        assert shot.exists() and shot.stat().st_size > 10_000, f"{shot} missing or blank"


def test_a_chapter_fits_a_phone_screen(browsed):
    # code cells and wide figures scroll inside their own boxes; the page itself must not
    assert browsed["phone"]["width"] <= 400, f"the page is {browsed['phone']['width']} px wide on a 390 px screen"


def test_browser_test_reads_the_built_site(site):
    assert Path(site / "html" / "index.html").exists()
