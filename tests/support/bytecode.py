"""Compiled bytecode for the packages under test, as an install leaves it."""

from __future__ import annotations

import compileall
import importlib.util


def compile_packages(*names: str) -> list[str]:
    """Compile each package's modules beside their source, as ``pip install`` does, and return
    the folders compiled.

    Python caches compiled modules beside their source unless ``PYTHONDONTWRITEBYTECODE`` is
    set or the folder is read-only. With an editable install in such an environment, every
    process would compile wavforge from source again: about half a second of CPU for each
    server, worker and command the tests or benchmarks start, a cost no installed copy pays.
    Python still reads bytecode it finds, so compiling once here is enough.
    """
    compiled = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"{name} is not importable")
        for folder in spec.submodule_search_locations:
            if compileall.compile_dir(folder, quiet=1):
                compiled.append(folder)
    return compiled
