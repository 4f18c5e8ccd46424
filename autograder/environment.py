"""The environment variables of grading, named once.

The kernel that runs a submission sees :data:`GRADING` (``NBGRADER_EXECUTION`` is what nbgrader
itself sets, so notebooks written for nbgrader behave as they would there), the thread count the
grader chose (:func:`threads`) and, where the instructor keeps a local copy of the course's
corpus, :data:`CORPUS`. :mod:`autograder.integrity` flags student code that looks for them.
"""

from __future__ import annotations

import os

GRADING = {"AUTOGRADER_EXECUTION": "1", "NBGRADER_EXECUTION": "autograde"}
CORPUS = "LLM_FOUNDATIONS_CORPUS"  # names a local copy of the course's corpus (llm_foundations.text)
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch's and numpy's thread pools
ROOT = "AUTOGRADER_ROOT"  # Gradescope's root folder, replaced to try the archive locally


def threads(count: int | None) -> dict[str, str]:
    """The thread-count variables for a kernel: the instructor's own ``OMP_NUM_THREADS`` wins;
    otherwise ``count`` (None: leave them as they are)."""
    own = {name: os.environ[name] for name in THREADS if name in os.environ}
    if count is None or "OMP_NUM_THREADS" in own:
        return own
    return {name: str(count) for name in THREADS}
