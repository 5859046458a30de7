"""``exit_with_parent``: a process whose parent is killed with SIGKILL (torchrun's launcher, or a small Python
parent) stops: through its SIGTERM handler when it has one, at once after the grace time when it ignores
SIGTERM. The test sees the child's end as the end of the pipe the child writes to."""
import os
import select
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHILD = """
import os, signal, sys, time
from sparsenet.runtime import exit_with_parent
if {ignore_sigterm}:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *frame: (print("terminated", flush=True), sys.exit(143)))
exit_with_parent(poll_seconds=0.05, grace_seconds=0.5)
print("ready", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""
PARENT = """
import subprocess, sys
subprocess.Popen([sys.executable, sys.argv[1]]).wait()
"""
LAUNCHERS = {"python": [sys.executable, "-c", PARENT],
             "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]}


def _lines_until_closed(stream, timeout: float) -> list[str] | None:
    """The lines written to ``stream`` until every writer has closed it; None if that takes over ``timeout``."""
    lines, buffer = [], b""
    fd = stream.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return lines + buffer.decode().splitlines()
        buffer += chunk


@pytest.mark.parametrize("launcher,ignore_sigterm,last_line", [("python", False, "terminated"), ("python", True, None),
                                                                ("torchrun", False, "terminated")])
def test_the_child_exits_when_its_parent_is_killed(tmp_path, launcher, ignore_sigterm, last_line):
    worker = tmp_path / "worker.py"
    worker.write_text(CHILD.format(ignore_sigterm=ignore_sigterm))
    parent = subprocess.Popen([*LAUNCHERS[launcher], str(worker)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    first = parent.stdout.readline().decode().split()
    assert first[0] == "ready", first
    child = int(first[1])
    lines = None
    try:
        parent.kill()
        parent.wait()
        lines = _lines_until_closed(parent.stdout, timeout=60)
    finally:
        if lines is None:  # the child outlived its parent (or the test broke): end it here
            os.kill(child, signal.SIGKILL)
        parent.stdout.close()
    assert lines is not None, "the child outlived its parent by a minute"
    assert (lines[-1] if lines else None) == last_line


def test_a_second_call_returns_the_same_watch():
    code = ("from sparsenet.runtime import exit_with_parent as e; a = e(); b = e(); "
            "print(a is b and a.daemon and a.is_alive())")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr
