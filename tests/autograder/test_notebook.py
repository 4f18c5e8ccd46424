"""Reading notebooks and their cells (:mod:`autograder.notebook`): what any submission may look like."""

from __future__ import annotations

import json
import threading

import nbformat
import pytest

from autograder.notebook import (
    GUARD,
    STUDENT_EXTRA,
    SubmissionError,
    defined_names,
    imported_names,
    is_student_code,
    is_test,
    max_score,
    nbgrader_meta,
    new_cell,
    parse_python,
    read_notebook,
    role,
    solution_ids,
)


def _source():
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_code_cell("def f(): ...", metadata={"nbgrader": {"solution": True, "grade_id": "f"}}),
        nbformat.v4.new_code_cell("assert f()", metadata={"nbgrader": {"grade": True, "grade_id": "t1", "points": 2}}),
        nbformat.v4.new_code_cell("def g(): ...", metadata={"nbgrader": {"solution": True, "grade_id": "g"}}),
        nbformat.v4.new_code_cell("assert g()", metadata={"nbgrader": {"grade": True, "grade_id": "t2", "points": 1.5}}),
    ])


def test_metadata_helpers_read_nbgrader_and_the_graders_roles():
    nb = _source()
    assert solution_ids(nb) == ["f", "g"] and max_score(nb) == 3.5
    assert [is_test(c) for c in nb.cells] == [False, False, True, False, True]
    broken = nbformat.v4.new_code_cell("x", metadata={"nbgrader": "not a dict"})
    assert nbgrader_meta(broken) == {} and nbgrader_meta(nbformat.v4.new_markdown_cell("m")) == {}
    extra, guard = new_cell("def helper(): ...", STUDENT_EXTRA), new_cell("check()", GUARD)
    assert (role(extra), role(guard), role(nb.cells[0])) == ("student-extra", "guard", None)
    assert [is_student_code(c) for c in (nb.cells[1], extra, guard, nb.cells[2])] == [True, True, False, False]


def test_any_nbformat_4_file_reads_the_same():
    nb = _source()
    text = json.dumps({**json.loads(nbformat.writes(nb)), "nbformat_minor": 0}, indent=2)
    data = json.loads(text)
    data["cells"][1]["source"] = ["def f():\r\n", "    return 1\r\n"]  # 4.0 files may keep lists of lines
    read = read_notebook(json.dumps(data).replace("\n", "\r\n"))
    assert read.cells[1].source == "def f():\n    return 1\n", repr(read.cells[1].source)
    assert [c.source for c in read.cells[2:]] == [c.source for c in nb.cells[2:]]


@pytest.mark.parametrize("text", ["this is not json {", "{}", '{"cells": 3, "nbformat": 4, "nbformat_minor": 5}', ""])
def test_what_is_not_a_notebook_is_a_submission_error(text):
    with pytest.raises(SubmissionError, match="not a readable notebook"):
        read_notebook(text)


def test_code_is_parsed_safely_whatever_it_is():
    for source in ("def f(:\n", "x = 1\x00", "(" * 300 + ")" * 300):
        assert parse_python(source) is None or source.startswith("("), source[:20]
        assert imported_names(source) == [] or source.startswith("("), source[:20]
    assert defined_names("def half_written(x:\n    pass\nclass Also:") == {"half_written", "Also"}, (
        "a half-written answer still names what it defines")


def test_names_a_cell_binds():
    source = "import torch.nn as nn\nfrom math import sqrt, pi as PI\nimport os.path\nx = 1\ndef f(): ...\nclass C: ..."
    assert imported_names(source) == ["PI", "nn", "os", "sqrt"]
    assert defined_names(source) == {"nn", "sqrt", "PI", "os", "x", "f", "C"}


def test_parsing_from_several_threads_at_once_works():
    failures = []

    def parse_many():
        for _ in range(200):
            if parse_python("def f(x):\n    return [[(x, {1: 2})] for _ in range(3)]\n") is None:
                failures.append("parse failed")

    threads = [threading.Thread(target=parse_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
