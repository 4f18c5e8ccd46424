"""The instructor's side of the course: release exercises, collect and grade submissions.

Each verb is one small module with one public function, callable from Python or through the
thin command line ``python -m autograder VERB``:

- :func:`release` (``autograder.release``): regenerate ``exercises/`` from ``solutions/``.
- :func:`collect` (``autograder.collect``): copy submitted notebooks into a course directory.
- :func:`grade` (``autograder.grade``): autograde the collected notebooks and write a grades CSV.
- :func:`feedback` (``autograder.feedback``): one HTML page per student.
- :func:`export` (``autograder.export``): every result as one CSV (plain or Canvas).

nbgrader generates the student notebooks and defines the notebook format (cell metadata,
solution and hidden-test regions). Grading reuses that format but runs its own pipeline: each
submission in its own process, under limits, with the tests restored from the source and
guarded against tampering, and no shared database while submissions run in parallel.

The pipeline's steps, one module each (:mod:`autograder.grade` calls them in order):
:mod:`~autograder.notebook` (reading notebooks, nbgrader metadata, the grader's cell roles),
:mod:`~autograder.assemble` (the answers put into the source notebook),
:mod:`~autograder.integrity` (the student's code scanned), :mod:`~autograder.instrument` (the
guard's cells added; :mod:`~autograder.guard` runs in the kernel), :mod:`~autograder.execute`
(run under :mod:`~autograder.limits`, inside :mod:`~autograder.sandbox`), :mod:`~autograder.score`
(points per test cell), :mod:`~autograder.status` (what happened, judged into a status) and
:mod:`~autograder.results` (the stored results and the CSV tables). :mod:`~autograder.environment`
names the grading environment's variables; :mod:`~autograder.course` the files' places.
"""

import sys

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed, to check the "iri"
# string format, and building that parser takes about 1.7 s per process. Notebooks never use
# the format, and every graded submission runs in a fresh worker process that imports nbformat:
# skipping it takes about 1.7 s off each of them (a fifth of a typical chapter's grading time).
sys.modules.setdefault("rfc3987_syntax", None)

from autograder.collect import collect  # noqa: E402 - after the import shortcut above
from autograder.export import export  # noqa: E402
from autograder.feedback import feedback  # noqa: E402
from autograder.grade import grade  # noqa: E402
from autograder.release import release  # noqa: E402

__all__ = ["collect", "export", "feedback", "grade", "release"]
