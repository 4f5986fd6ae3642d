"""Start the real `steepest lab` in a subprocess on 127.0.0.1 and talk to it over HTTP."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def _json_or_text(raw: bytes):
    """An error response's JSON, or ``{"text": …}`` when it is not JSON (a 500's plain-text page)."""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {"text": raw.decode("utf-8", "replace")}


class Lab:
    def __init__(self, *args, cwd):
        self.proc = subprocess.Popen([sys.executable, "-m", "steepest", "lab", "--no-browser", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                                     env=dict(os.environ),  # SIGINT at its default, as from a terminal, so
                                     # that stop()'s Ctrl-C acts even when the tests run in the background
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        line = self.proc.stdout.readline()
        if not line.startswith("lab: http://"):
            self.proc.kill()
            raise AssertionError(f"no URL line: {line!r} {self.proc.stderr.read()}")
        self.url = line.split(" ", 1)[1].strip()
        self.base, self.token = self.url.split("/?token=")
        # read stderr as it comes: a server that writes tracebacks would otherwise fill the pipe and
        # block, and a test can then assert that nothing went to stderr (self.stderr())
        self._err = []
        self._reader = threading.Thread(target=lambda: self._err.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def stderr(self) -> str:
        """What the server has written to stderr so far."""
        return "".join(self._err)

    def request(self, path, body=None, token=True, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["X-Lab-Token"] = self.token
        req = urllib.request.Request(self.base + path, data=data, headers=h, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _json_or_text(e.read())

    def post(self, path, body=None):
        return self.request(path, body if body is not None else {})

    def events(self, seconds, stop=None):
        """Messages of the event stream for up to ``seconds`` (or until ``stop(msg)`` is true)."""
        req = urllib.request.Request(f"{self.base}/api/events?token={self.token}")
        out, t0 = [], time.monotonic()
        with urllib.request.urlopen(req, timeout=seconds + 5) as r:
            for line in r:
                if line.startswith(b"data: "):
                    out.append(json.loads(line[6:]))
                    if stop and stop(out[-1]):
                        break
                if time.monotonic() - t0 > seconds:
                    break
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self.proc.stdout.read()  # a few lines after the URL: never enough to fill the pipe
        self._reader.join(timeout=5)
        return self.proc.returncode, out, self.stderr()
