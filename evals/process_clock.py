"""When this process began, on the monotonic clock: so a command's printed total can
include Python's start-up and imports, which a person waits through too.

Standard library only and tiny: the CLI imports it before the heavy modules it times.
"""

import os
import time
from pathlib import Path


def process_started() -> float:
    """`time.monotonic()` as it read when the process began (Linux's /proc), or now where
    that is not known."""
    now = time.monotonic()
    try:
        # Fields after the ")" that ends the command name start at field 3; starttime is
        # field 22, in clock ticks since boot, as /proc/uptime counts seconds since boot.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return now
    age = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    return now - max(0.0, age)
