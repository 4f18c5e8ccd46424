"""Record how every exercise grades, test cell by test cell, to prove a refactoring changed nothing.

    python tests/grading_table.py record OUT.json [ASSIGNMENT ...]
    python tests/grading_table.py compare BEFORE.json AFTER.json

``record`` scores, for each assignment, the reference answers, the untouched student notebook and
every answer of the chapter's bug zoo (mistakes and alternatives) in one kernel per chapter, as
the zoo tests do (``zoo_runner``), and writes ``{assignment: {answer: {grade_id: points}}}``.
``compare`` prints every cell whose points differ and exits 1 if any does; answers or assignments
present in only one table are listed but are not differences (a zoo may have grown in between).

Not part of the test suite: the zoo tests already check what must hold today (mistakes lose
points, alternatives keep them); this keeps the whole table, so that a change meant to leave
grading alone can be checked against the table taken before it.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submissions import REPO, Answer, build_submission, notebook_paths  # noqa: E402
from zoo_runner import ZooKernel  # noqa: E402


def record(assignments: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    table = {}
    for assignment in assignments:
        module = importlib.import_module(f"zoo.ch{assignment}")
        solution, _ = notebook_paths(assignment)
        source = nbformat.read(solution, as_version=4)
        skip = frozenset(getattr(module, "SLOW_TESTS", ()))
        answers = {"reference-answers": (Answer("reference", ""), True), "untouched": (None, True)}
        answers.update({a.name: (a, False) for a in module.MISTAKES})
        answers.update({a.name: (a, True) for a in module.ALTERNATIVES})
        with tempfile.TemporaryDirectory(prefix=f"table-{assignment}-") as workdir, \
                ZooKernel(source, Path(workdir), cell_seconds=120, skip_for_mistakes=skip) as kernel:
            rows = {}
            for name, (answer, full_marks) in answers.items():
                results = kernel.score(build_submission(assignment, answer), expect_full_marks=full_marks)
                rows[name] = {r.grade_id: r.points for r in results}
                print(f"{assignment} {name}: {sum(rows[name].values())}", flush=True)
        table[assignment] = rows
    return table


def compare(before: dict, after: dict) -> list[str]:
    differences, notes = [], []
    for assignment in sorted(set(before) | set(after)):
        if assignment not in before or assignment not in after:
            notes.append(f"{assignment}: only in {'after' if assignment in after else 'before'}")
            continue
        old, new = before[assignment], after[assignment]
        for name in sorted(set(old) ^ set(new)):
            notes.append(f"{assignment} {name}: only in {'after' if name in new else 'before'}")
        for name in sorted(set(old) & set(new)):
            if old[name] != new[name]:
                differences.append(f"{assignment} {name}: {old[name]} -> {new[name]}")
    for line in notes:
        print("note:", line)
    for line in differences:
        print("DIFFERENT:", line)
    compared = sum(len(set(before[a]) & set(after[a])) for a in set(before) & set(after))
    print(f"{compared} submissions compared cell by cell, {len(differences)} differ")
    return differences


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "record":
        wanted = argv[2:] or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
        Path(argv[1]).write_text(json.dumps(record(wanted), indent=1, sort_keys=True))
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        before, after = (json.loads(Path(p).read_text()) for p in argv[1:])
        return 1 if compare(before, after) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
