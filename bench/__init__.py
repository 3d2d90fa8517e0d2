"""Measurement scripts (run as ``python bench/<name>.py``; they print ratios, never assert).

A benchmark's throw-away repositories keep their worktrees in a throw-away folder too: by
default director puts worktrees in the user's state dir, where each bench run left dozens.
The model checks that passed (``model_cache``) go to a throw-away file as well: a bench
measures from a known start, and its fake providers' passes mean nothing to the user.
"""

import os
import tempfile

os.environ.setdefault(
    "DIRECTOR_WORKTREE_ROOT", tempfile.mkdtemp(prefix="director-bench-worktrees-")
)
os.environ.setdefault(
    "DIRECTOR_MODEL_CHECK_CACHE",
    os.path.join(tempfile.mkdtemp(prefix="director-bench-state-"), "model-checks.json"),
)
