"""Run one command and measure its wall time and peak RSS.

Peak RSS is `ru_maxrss` (KB on Linux) from `os.wait4(pid, 0)`: the maximum resident set of the
child *and of any descendants it waited for*, i.e. the largest single process of the tree, not
the sum. Caveat that shapes this module: Linux seeds a process's ru_maxrss with the RSS of the
process that forked it (with vfork/posix_spawn, which subprocess uses, the parent's *peak*). A
Popen straight from bench.py (pyarrow loaded, parquet files verified) would report >= bench.py's
own peak even for /bin/true. So bench.py starts a tiny launcher (`python -I -S`, ~5 MB) that
fork()s + execs the command and calls wait4 itself; the resulting floor is measured by
`rss_floor_kb()` and printed. Wall time is time.perf_counter() around fork .. wait4 in the
launcher (excludes the ~20 ms launcher start-up). CPU time (user + system, from the same wait4)
is much less sensitive than wall time to other load on the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

_LAUNCHER = """
import os, sys, time
stdout_path, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc}\\n".encode())
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, repr(wall),
      repr(usage.ru_utime + usage.ru_stime))
"""


@dataclass
class Measured:
    exit_code: int
    wall_s: float
    peak_rss_kb: int
    stderr_tail: str
    cpu_s: float = 0.0  # user + system CPU of the command and the descendants it waited for


def run_measured(
    argv: list[str],
    env: dict[str, str] | None = None,
    stdout_path: str = os.devnull,
    stderr_path: str = os.devnull,
    cwd: str | None = None,
) -> Measured:
    """Run argv (stdout -> stdout_path, stderr -> stderr_path) under the launcher."""
    with open(stderr_path, "wb") as err:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, stdout_path, *argv],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=err,
            check=True,
            text=True,
        )
    code, rss, wall, cpu = proc.stdout.split()
    tail = ""
    if stderr_path != os.devnull:
        with open(stderr_path, "rb") as fh:
            tail = fh.read()[-2000:].decode("utf-8", "replace")
    return Measured(int(code), float(wall), int(rss), tail, float(cpu))


def rss_floor_kb() -> int:
    """ru_maxrss reported for /bin/true: the launcher-imposed lower bound of every reading."""
    return run_measured(["true"]).peak_rss_kb
