"""Stopping on SIGTERM (``serving.until_asked_to_stop``): the kernel may hand a process's
signal to any of its threads, and the stop must come whichever one it lands on.

The signal is sent to one thread with ``pthread_kill``, in a child interpreter of its own, so
the handlers never touch the test process. A main thread waiting with no timeout (the code
before the fix) sleeps through it: this test then fails on its deadline.
"""

from __future__ import annotations

import subprocess
import sys
import time

CHILD = """
import signal, threading, time
from wavforge.serving import stop_signals, until_asked_to_stop

asked = stop_signals()

def busy_thread():
    time.sleep(0.5)  # the main thread is asleep in its wait by then
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # lands here, not on main
    threading.Event().wait(30)

threading.Thread(target=busy_thread, daemon=True).start()
until_asked_to_stop(asked)
print("stopped", flush=True)
"""


def test_a_signal_landing_on_another_thread_still_stops_the_process() -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=20, check=True
    )
    assert done.stdout.strip() == "stopped"
    assert time.monotonic() - began < 10  # the child's thread would have held it 30 s
