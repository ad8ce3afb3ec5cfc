"""A worker of `omni serve --workers N` dies with its supervisor: killed outright (kill
-9), the supervisor cannot stop its workers, which would keep the port and serve on."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

#: Set by `omni serve --workers N` to its own process id for the workers it starts.
SUPERVISOR_ENV = "OMNI_SUPERVISOR_PID"
log = logging.getLogger("omni.service")


def die_with_supervisor(every_seconds: float = 1.0) -> None:
    """In a worker started by `omni serve --workers N`: stop (as on SIGTERM, closing the
    port) once the supervising process is gone. Elsewhere: nothing."""
    pid = os.environ.get(SUPERVISOR_ENV, "")
    if not pid.isdigit():
        return
    if os.getppid() != int(pid):
        if _alive(int(pid)):
            return  # not a worker: a process that inherited the variable
        # Killed while this worker was still starting: stop before serving anything.
        log.warning("the supervising process %s is gone: stopping this worker", pid)
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:
        while os.getppid() == int(pid):
            time.sleep(every_seconds)
        log.warning("the supervising process %s is gone: stopping this worker", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="omni-supervisor-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: it answered the signal
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
