"""A rank's last word: a helper process, out of the launcher's reach, writes the rank's one line.

MPICH's launcher cannot be relied on to let a survivor speak: its proxy SIGKILLs every rank on the host
as soon as it reaps one that a signal ended — even under ``mpiexec -disable-auto-cleanup``, and often
before it has sent the survivors SIGUSR1 (its main loop calls ``waitpid`` after every event and
``kill(-pgid, SIGKILL)`` on ``WIFSIGNALED``). So each rank starts a helper (:class:`LastWord`) that

* runs in a session of its own: the proxy signals each rank's process group, not the helper's;
* holds the rank's stdout and stderr, so that the launcher (which waits for them to close) and
  whatever reads the rank's stderr see the helper's line before the run's end;
* reads a pipe from the rank until the rank has ended (its end of the pipe closes then): first the
  line to write for each peer process on this host, should the rank end without a word after that
  peer has ended; then either ``said`` (the rank's own line, written when the rank has ended — only
  the helper writes, so it is one line whichever thread or signal spoke first) or ``done`` (silence).

Run as a script (``python -I -S _lastword.py``) it is the helper: standard library only, so it starts
in milliseconds without the package, NumPy or MPI.
"""

from __future__ import annotations

import json
import os

def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie — ended, not yet reaped — has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class LastWord:
    """The rank's side: start the helper; :meth:`say` hands it the rank's line, :meth:`done` silences it.

    ``peers``: ``[(pid, line), …]`` — the peer processes on this host and the line to write if the rank
    ends without a word (SIGKILLed by the launcher) after that peer has ended.
    """

    def __init__(self, peers):
        import atexit
        import subprocess
        import sys

        r, self.w = os.pipe()  # non-inheritable: only this process holds the write end
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", __file__], stdin=r, env={}, close_fds=True,
                                         start_new_session=True)
        finally:
            os.close(r)
        self._send({"peers": [list(p) for p in peers]})
        atexit.register(self.done)  # an exception or sys.exit ends the process without on_train_end

    def _send(self, message: dict) -> None:
        # one write: up to PIPE_BUF (4 KiB; a line is far shorter) it is whole or absent, never torn by a kill
        try:
            os.write(self.w, (json.dumps(message) + "\n").encode())
        except OSError:  # the helper is gone: nothing to tell
            pass

    def say(self, line: str) -> None:
        """The rank's one line: the helper writes it on the rank's stderr once the rank has ended."""
        self._send({"said": line})

    def done(self) -> None:
        """The rank ends without a line: the helper ends now, silently."""
        import atexit

        if self.w is None:
            return
        self._send({"done": True})
        os.close(self.w)
        self.w = None
        atexit.unregister(self.done)
        try:
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 — it ends by itself at the end of the pipe
            pass


def helper() -> None:
    """The helper's side: read until the rank has ended, then write the one line, if any."""
    data = b""
    while chunk := os.read(0, 1 << 16):
        data += chunk
    messages = []
    for raw in data.split(b"\n"):
        try:
            messages.append(json.loads(raw))
        except ValueError:  # empty, or cut short by the rank's death
            pass
    if any(m.get("done") for m in messages):
        return
    line = next((m["said"] for m in messages if "said" in m), None)
    if line is None:
        peers = next((m["peers"] for m in messages if "peers" in m), [])
        line = next((said for pid, said in peers if not alive(pid)), None)
    if line is not None:
        try:
            os.write(2, line.encode())
        except OSError:
            pass


if __name__ == "__main__":
    helper()
