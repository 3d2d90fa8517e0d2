"""Measurement scripts (run as ``python bench/<name>.py``; they print ratios, never assert).

A benchmark's throw-away repositories keep their worktrees in a throw-away folder too: by
default director puts worktrees in the user's state dir, where each bench run left dozens.
"""

import os
import tempfile

os.environ.setdefault(
    "DIRECTOR_WORKTREE_ROOT", tempfile.mkdtemp(prefix="director-bench-worktrees-")
)
