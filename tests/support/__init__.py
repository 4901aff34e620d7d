"""What the tests and the benchmarks share: free ports, process trees, the wavforge
deployments of both modes, a callback receiver and bulk imports.

The tests import it as ``support`` (pytest puts ``tests/`` on the path); the benchmarks, run
from the repository root as ``python -m bench.<name>``, as ``tests.support``. Its modules
therefore import one another relatively and nothing from the rest of ``tests/``.
"""
