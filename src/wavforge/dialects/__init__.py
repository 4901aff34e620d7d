"""The wire dialects: each one object (``base.Dialect``), found here by name or by path.

::

    Dialect (base.py)         name, prefixes, envelopes, status words, time format,
    ├── Suno  (suno.py)       callback body, retry schedule, OpenAPI models
    └── Unified (unified.py)

Vendor profiles (``wavforge.profiles``) sit on top: how one vendor of a family numbers its errors
and sets the HTTP status. Shared wire helpers live in ``wire.py``, not in either dialect.
"""

from __future__ import annotations

from collections.abc import Iterator

from wavforge.dialects.base import Dialect
from wavforge.dialects.suno import SUNO
from wavforge.dialects.unified import UNIFIED

__all__ = ["DIALECTS", "SUNO", "UNIFIED", "Dialect", "Dialects"]


class Dialects:
    """The registered dialects. The first is the default: it speaks for paths no dialect
    owns (the account, admin and download endpoints) and for rows made before dialects
    were recorded."""

    def __init__(self, *dialects: Dialect) -> None:
        self._by_name = {dialect.name: dialect for dialect in dialects}
        self.default = dialects[0]

    def __iter__(self) -> Iterator[Dialect]:
        return iter(self._by_name.values())

    def named(self, name: str | None) -> Dialect:
        """The dialect a task was made in (its stored name); unknown names are a bug."""
        return self._by_name[name] if name else self.default

    def for_path(self, path: str) -> Dialect:
        return next((d for d in self if d.owns(path)), self.default)


DIALECTS = Dialects(SUNO, UNIFIED)
