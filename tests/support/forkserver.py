"""Starts McGIP web servers quickly: imports the app once, then forks one fresh server process per
port read from stdin and prints its pid. A test kills such a child with SIGKILL and asks for another;
each child builds its own app, engine and connections after the fork, exactly like a new process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import uvicorn

from server.app import create_app
from server.settings import Settings


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped at once
    for line in sys.stdin:
        port = int(line)
        pid = os.fork()
        if pid == 0:
            os.setsid()
            logging.basicConfig(level=logging.WARNING)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            app = create_app(Settings())
            uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
            os._exit(0)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
