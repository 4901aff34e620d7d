"""The converter children's template: multiprocessing's fork server imports this once.

Every converter child used to be a fresh interpreter that imported numpy, PyAV and the engine
and warmed the engine up: about 0.3 s of a core per child, four children per ``wavforge
serve``, and again for each child replaced after a crash or a limit. The fork server
(``isolation``) is one such interpreter, started once; it imports this module, which does that
work once, and every child is a fork of it, ready in milliseconds and sharing the pages it
never writes.

The fork server has a single thread, so forking it is safe, where forking the threaded server
is not. What each child does for itself after the fork (its own session, its limits, dying
with its parent) is ``child.main``.
"""

from __future__ import annotations

import os

# BLAS/OpenMP libraries start worker threads as soon as numpy loads, and the engine may fork
# (``segments``), which is only safe from a single-threaded process: set before numpy loads.
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(SINGLE_THREAD_ENV)

# The fork server's pid: a child's parent, whose death the child must follow (``child.main``).
PID = os.getpid()

from wavforge.audio import child  # noqa: E402  (the variables above must be set first)

child.warm_up()
