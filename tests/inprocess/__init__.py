"""The in-process tier: the core's rules on a real database, with fakes for what runs outside.

Tests here call the core's functions on a :class:`wavforge.core.context.Context` built from a
temporary SQLite file, local storage and the fakes in :mod:`inprocess.fakes`; no server, queue,
converter process or network is started, so each test takes milliseconds. What needs real
processes (signals, crashes, the HTTP surface) stays in the suite around this package.
"""
