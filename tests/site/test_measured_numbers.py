"""Numbers that depend on a run come from the run.

**The rule.** A chapter's prose or caption never types a measured value by hand (an accuracy, a
loss, a norm or probability read off an output, a timing, a speed-up, "after about N steps").
Either the cell that measures it glues it, ``glue("ch04_speedup", speedup, ".1f")`` from
:mod:`llm_foundations.glue`, and the markdown inserts it with ``{glue:text}`ch04_speedup```, or
the cell prints it and the prose points at the output without repeating it. Then text and
outputs cannot drift apart when a seed, a library or the hardware changes. Quoted sample text
follows the same rule; this test can only check the numbers.

Every other number in the markdown must be *constant by construction*, and this test must be able
to see that. It ignores math (``$...$``, ``$$...$$``), inline code and code blocks, MyST roles
(``{cite}``, ``{glue:text}``, ...), link targets, HTML, heading and list numbers, references
("chapter 4", "§3.4", "Table 3", "Figure 2", "eq. 5", "footnote 4", "(2017)"), ordinals and
hyphenated compounds ("16-bit", "3-word"). A remaining number passes when

- it equals a numeric literal written in one of the notebook's code cells (a setting: "batch 4,
  width 64", "g = 0.5"), unless it looks measured: preceded by *about*, *around*, *roughly*,
  *nearly*, *below*, *above*, *less than*, ≈ ... or followed by %, ×, *times* or a time unit; or
- a phrase containing it is in the notebook's allow-list, the notebook metadata
  ``constant_numbers``: ``{"exact phrase of the markdown": "why it is constant"}``, e.g.
  ``{"65M and 213M": "the paper's Table 3", "= 2,048 parameters": "4d with d = 512"}``. Every
  occurrence of a phrase is exempt; each phrase must occur in the markdown and give a reason.

The test also checks that every glue key the markdown uses is glued by a code cell of the same
notebook (``glue("key", ...)`` with a literal key), so a typo fails here rather than as a blank
in the built page.
"""

from __future__ import annotations

import re
import sys
import types

import pytest

from notebooks import chapter_notebooks, read

_REMOVE = [
    re.compile(r"^(```+|~~~+|:::+).*?^\1", re.S | re.M),  # code blocks and directives
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),
    re.compile(r"(?<![\\$])\$[^$\n]+?\$"),  # inline math
    re.compile(r"\{[\w:.-]+\}`[^`]*`"),  # MyST roles: {cite}, {glue:text}, {doc}, ...
    re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<!--.*?-->|<[^>]+>", re.S),  # HTML
    re.compile(r"^#+\s+\d+(?:\.\d+)*", re.M),  # heading numbers: "## 3.4 A shift ..."
    re.compile(r"^\s*\d+\.\s", re.M),  # numbered-list markers
    re.compile(  # references to parts of this course or of a paper
        r"(?:chapters?|§|sections?|tables?|figures?|fig\.|eqs?\.|equations?|footnotes?|appendix)"
        r"\s*\(?\d+(?:\.\d+)*\)?(?:(?:,\s*|,?\s+and\s+|\s+to\s+|\s*[–-]\s*|\s+or\s+|,?\s*§\s*)\d+(?:\.\d+)*)*",
        re.I,
    ),
    re.compile(r"\((?:19|20)\d\d[a-z]?\)|et al\.,? (?:19|20)\d\d"),  # years of a citation
    re.compile(r"(?<![\w.])\d+(?:st|nd|rd|th|-[A-Za-z][\w-]*)\b"),  # "5th", "16-bit", "3-word"
]
_NUMBER = re.compile(r"(?<![\w.])(?<!\w[-−])\d(?:[\d,_]*\d)?(?:\.\d+)?(?:[eE][-+−]?\d+)?(?!\d)")
_LITERAL = re.compile(r"(?<![\w.])\d[\d_]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_APPROXIMATE_BEFORE = re.compile(
    r"(?:\babout|\baround|\broughly|\bapproximately|\bnearly|\balmost|≈|~|\bbelow|\babove|\bless than"
    r"|\bmore than|\bfewer than|\bat least|\bat most|\bclose to)\s*$", re.I)
_MEASURED_AFTER = re.compile(r"^\s*(?:%|×|x\b|times\b|ms\b|µs\b|s\b|seconds?\b|minutes?\b)")
_GLUE_USE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")
_GLUE_DEFINITION = re.compile(r"\bglue\(\s*[\"']([^\"']+)[\"']")


def _value(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("_", "").replace("−", "-"))
    except ValueError:
        return None


def code_literals(sources: list[str]) -> set[float]:
    return {v for source in sources for m in _LITERAL.finditer(source) if (v := _value(m.group())) is not None}


def unexplained_numbers(markdown: str, literals: set[float], allowed: list[str] = ()) -> list[tuple[str, str]]:
    """(number, context) for every number of ``markdown`` that the rule above does not explain."""
    for phrase in allowed:
        markdown = markdown.replace(phrase, " ")
    for pattern in _REMOVE:
        markdown = pattern.sub(" ", markdown)
    found = []
    for m in _NUMBER.finditer(markdown):
        before, after = markdown[max(0, m.start() - 20):m.start()], markdown[m.end():m.end() + 10]
        measured_looking = _APPROXIMATE_BEFORE.search(before) or _MEASURED_AFTER.match(after)
        if not measured_looking and _value(m.group()) in literals:
            continue
        context = markdown[max(0, m.start() - 40):m.end() + 25]
        found.append((m.group(), " ".join(context.split())))
    return found


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_measured_numbers_in_the_prose_come_from_the_run(path):
    nb = read(path)
    allowed = nb.metadata.get("constant_numbers", {})
    markdown = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    literals = code_literals([c.source for c in nb.cells if c.cell_type == "code"])
    problems = []
    for phrase, reason in allowed.items():
        if not str(reason).strip():
            problems.append(f"constant_numbers[{phrase!r}] gives no reason: say why it cannot change with a run")
        if not any(phrase in source for _, source in markdown):
            problems.append(f"constant_numbers[{phrase!r}] no longer occurs in the markdown: remove the entry")
    for i, source in markdown:
        for number, context in unexplained_numbers(source, literals, list(allowed)):
            problems.append(f"markdown cell {i}: {number!r} in \"…{context}…\"")
    assert not problems, (
        f"{path.name}: numbers in the prose that may depend on the run:\n  " + "\n  ".join(problems)
        + "\nHint: if a cell measures it, glue it there (llm_foundations.glue.glue('chNN_key', value, '.2f')) and "
        "write {glue:text}`chNN_key`; if it is constant by construction (a paper's figure, a setting, arithmetic), "
        "add the phrase and the reason to the notebook metadata 'constant_numbers'. The rule: "
        "tests/site/test_measured_numbers.py's docstring."
    )


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_every_glue_key_in_the_prose_is_glued_by_a_cell(path):
    nb = read(path)
    used = {key for c in nb.cells if c.cell_type == "markdown" for key in _GLUE_USE.findall(c.source)}
    glued = {key for c in nb.cells if c.cell_type == "code" for key in _GLUE_DEFINITION.findall(c.source)}
    missing = sorted(used - glued)
    assert not missing, (f"{path.name}: the markdown inserts {missing}, which no code cell glues "
                         f"(glued here: {sorted(glued)}); call glue('<key>', value) with a literal key")


# The rule itself, on small examples.

def test_rule_flags_measured_values_and_passes_settings_references_and_glued_values():
    literals = code_literals(["train(steps=60, batch=64, lr=0.01)\nfor g in (0.5, 1.5): pass"])
    ok = ("We train for 60 steps of 64 examples with g = 0.5 (chapter 6, §3.4, Table 3 of the paper, "
          "{cite}`vaswani2017attention`), in 16-bit floats; the loss ends at {glue:text}`ch06_loss:.2f`.\n"
          "## 6.7 Experiment\n1. first step\n$$P = 12 d^2$$ and `x[:, 3]` and $d = 512$.")
    assert unexplained_numbers(ok, literals) == []
    flagged = [n for n, _ in unexplained_numbers(
        "The loss falls to 0.27 after about 60 steps; 99.5% exact match; 5.0× faster; it takes 102 s; "
        "the error is below 0.01.", literals)]
    assert flagged == ["0.27", "60", "99.5", "5.0", "102", "0.01"], flagged
    assert unexplained_numbers("the paper reports 65M", literals, ["65M"]) == []


def test_glue_is_silent_without_myst_nb_and_stores_formatted_text_with_it(monkeypatch):
    from llm_foundations.glue import glue

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as on Colab: the import fails
    assert glue("ch00_x", 1.234, ".1f") is None
    calls = []
    monkeypatch.setitem(sys.modules, "myst_nb", types.SimpleNamespace(glue=lambda *a, **k: calls.append((a, k))))
    glue("ch00_x", 1.234, ".1f")
    glue("ch00_y", 7)
    assert calls == [(("ch00_x", "1.2"), {"display": False}), (("ch00_y", 7), {"display": False})]
    with pytest.raises(TypeError):
        glue("", 1)
