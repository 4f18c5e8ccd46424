"""The pieces that must agree across the repository: setup cells, table of contents, config."""

from __future__ import annotations

import re

import pytest

from notebooks import REPO, all_notebooks, book_config, chapter_notebooks, exercise_notebooks, github_repository, read, toc_files


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: str(p.relative_to(REPO)))
def test_first_code_cell_installs_the_course_on_colab_only(path):
    repo, branch = github_repository()
    first = next(c for c in read(path).cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first.source, f"{path.name}: first code cell is not the setup cell"
    urls = re.findall(r"git\+https://github\.com/([^@\"]+)@([\w.-]+)", first.source)
    assert urls == [(repo, branch)], f"{path.name}: setup cell installs {urls}, _config.yml says {repo}@{branch}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_pages_hide_the_colab_setup_cell(path):
    """Readers of the website start with the chapter, not with a pip command for Colab."""
    first = next(c for c in read(path).cells if c.cell_type == "code")
    assert "remove-cell" in first.metadata.get("tags", []), f"{path.name}: tag the setup cell 'remove-cell'"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_pages_open_with_their_title(path):
    first = read(path).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), f"{path.name}: put the title cell first"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_headings_have_no_math(path):
    """The page's table of contents shows a heading as plain text: `$\\sqrt{d_k}$` would appear raw there."""
    headings = [line for c in read(path).cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")]
    with_math = [h for h in headings if "$" in h]
    assert not with_math, f"{path.name}: write these headings without LaTeX (e.g. √dₖ): {with_math}"


_FIGURE_CALL = re.compile(r"plt\.show\(\)|draw_transformer\(|plot_attention\(")


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_shape_and_figure_captions(path):
    """Every chapter: what you will build, a summary, its exercise in Colab, the next chapter; a
    caption (an italic line) right after every cell that draws a figure, for readers and screen readers."""
    cells = read(path).cells
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    last = path == chapter_notebooks()[-1]
    for part in ("What you will build", "## Summary", "## Exercise", "https://colab.research.google.com/github/",
                 *(() if last else ("**Next:**",))):
        assert part in text, f"{path.name} has no {part!r}"
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and _FIGURE_CALL.search(cell.source):
            after = cells[i + 1] if i + 1 < len(cells) else None
            caption = after is not None and after.cell_type == "markdown" and re.match(r"\*[^*]", after.source.lstrip())
            assert caption, f"{path.name}: the figure of cell {i} has no caption (an italic markdown line after it)"


def test_every_chapter_and_exercise_is_in_the_table_of_contents():
    listed = set(toc_files())
    for path in chapter_notebooks() + exercise_notebooks():
        assert str(path.relative_to(REPO).with_suffix("")) in listed, f"{path} is missing from _toc.yml"
    for entry in listed:
        assert any((REPO / entry).with_suffix(s).exists() for s in (".md", ".ipynb")), f"_toc.yml names missing {entry}"


def test_book_config_never_builds_or_executes_solutions_or_exercises():
    config = book_config()
    assert "solutions" in config["exclude_patterns"], "solution notebooks (hidden tests!) must never be published"
    assert config["execute"]["execute_notebooks"] == "cache"
    assert "exercises/*/*.ipynb" in config["execute"]["exclude_patterns"]
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True


def test_package_is_installable_without_the_course_tooling():
    """Colab installs the package from pyproject.toml: its dependencies must be what Colab already has."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in project["dependencies"]}
    assert names == {"torch", "numpy", "matplotlib", "tqdm"}


# The works the course's talk cites: each must be in the bibliography and cited by some page.
TALK_REFERENCES = {
    "vaswani2017attention": "Attention Is All You Need", "mikolov2013efficient": "word2vec",
    "pennington2014glove": "GloVe", "bojanowski2017enriching": "fastText", "shaw2018self": "relative positions",
    "su2024roformer": "RoFormer (RoPE)", "bahdanau2015neural": "additive attention", "cho2014learning": "RNN encoder-decoder",
    "he2016deep": "ResNet", "jang2017categorical": "Gumbel-Softmax", "holtzman2020curious": "nucleus sampling",
    "devlin2019bert": "BERT", "brown2020language": "GPT-3",
}


def test_the_talks_references_are_in_the_bibliography_and_cited():
    bib = (REPO / "book" / "references.bib").read_text(encoding="utf-8")
    pages = "\n".join(p.read_text(encoding="utf-8") for p in [*chapter_notebooks(), *(REPO / "book").glob("*.md")])
    for key, work in TALK_REFERENCES.items():
        assert re.search(rf"@\w+\{{{key},", bib), f"{work} ({key}) is not in book/references.bib"
        assert re.search(rf"\{{cite[pt]?\}}`[^`]*\b{key}\b", pages), f"{work} ({key}) is never cited"
