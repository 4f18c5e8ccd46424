"""The instructor's side of the course: release exercises, collect and grade submissions.

Each verb is one small module with one public function, callable from Python or through the
thin command line ``python -m autograder VERB``:

- :func:`release` (``autograder.release``): regenerate ``exercises/`` from ``solutions/``.
- :func:`collect` (``autograder.collect``): copy submitted notebooks into a course directory.
- :func:`grade` (``autograder.grade``): autograde the collected notebooks and write a grades CSV.

nbgrader does the notebook work underneath; this package decides where files go, keeps the
student's originals untouched, and turns the gradebook into a table.
"""

from autograder.collect import collect
from autograder.grade import grade
from autograder.release import release

__all__ = ["collect", "grade", "release"]
