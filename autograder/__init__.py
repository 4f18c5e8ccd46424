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
"""

from autograder.collect import collect
from autograder.export import export
from autograder.feedback import feedback
from autograder.grade import grade
from autograder.release import release

__all__ = ["collect", "export", "feedback", "grade", "release"]
