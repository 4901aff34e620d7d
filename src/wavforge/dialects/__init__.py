"""Wire formats of the two vendor dialects: translation only — no SQL, no rules, no audio.

Each dialect turns core records into its JSON shapes and its requests into core requests.
The HTTP routers and the worker (for callback bodies) both use these modules.
"""

from __future__ import annotations

from wavforge.core.context import CallbackRenderer
from wavforge.core.states import Dialect
from wavforge.dialects import suno, unified


def callback_bodies() -> dict[str, CallbackRenderer]:
    return {
        Dialect.SUNO.value: suno.callback_body,
        Dialect.UNIFIED.value: unified.callback_body,
    }
