"""The helper that writes a rank's one line when the launcher SIGKILLs the rank first (no MPI needed)."""

import signal
import subprocess
import sys

import pytest

RANK = """
import os, signal, sys
from steepest._lastword import LastWord
dead, ending = int(sys.argv[1]), sys.argv[2]
last = LastWord([(os.getppid(), "a live peer\\n"), (dead, "a dead peer\\n")])
if ending == "said":
    last.say("my own line\\n")
    os.kill(os.getpid(), signal.SIGKILL)  # the launcher's SIGKILL, right after the rank spoke
elif ending == "done":
    last.done()
    os.kill(os.getpid(), signal.SIGKILL)
elif ending == "exit":
    sys.exit(2)  # an error the command line has reported already
else:
    os.kill(os.getpid(), signal.SIGKILL)  # without a word
"""


@pytest.fixture(scope="module")
def dead_pid():
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(p.stdout)


@pytest.mark.parametrize("ending, said", [("killed", "a dead peer\n"), ("said", "my own line\n"), ("done", ""),
                                          ("exit", "")])
def test_one_line_or_none_whoever_ends_the_rank(dead_pid, ending, said):
    """Killed without a word: the line for the peer that has ended (not the live one); killed after
    handing its line: that line, once; done, or ended by an ordinary exit: nothing. The run's reader
    sees the line before the rank's stderr closes (the helper holds it)."""
    rank = subprocess.run([sys.executable, "-c", RANK, str(dead_pid), ending], capture_output=True, text=True,
                          timeout=60)
    assert rank.returncode == (2 if ending == "exit" else -signal.SIGKILL)
    assert rank.stderr == said
