"""Watching training from the terminal: Ctrl-C, the progress bars, one line (or JSON object) per evaluation.

Each is a :class:`~steepest.events.Listener` on the training loop's events.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from steepest.events import Listener, Stop
from steepest.records import JSON_COLUMNS, evaluated_sets, evaluation_columns

# The keys of each --json evaluation line, in order: scripts and benchmarks rely on them.
EPOCH_KEYS = JSON_COLUMNS


class Interrupt(Listener):
    """Inside the block, the first Ctrl-C (SIGINT) or SIGTERM only sets :attr:`requested` (training stops
    after the current step and saves a checkpoint); a second one acts as it would have without us.

    SIGTERM is what ``kill``, ``timeout``, systemd and batch schedulers send: it ends the run as Ctrl-C
    does, resumable, with exit status 143 (128 + 15) instead of 130. ``signals`` says which to take
    (data-parallel runs leave SIGTERM to :mod:`steepest.parallel`, which reads it as the launcher's).
    """

    def __init__(self, signals=(signal.SIGINT, signal.SIGTERM)):
        self.signals, self.requested, self._old = tuple(signals), None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                if signal.getsignal(s) is not signal.SIG_IGN:  # nohup, background jobs: leave it ignored
                    self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = self.requested or signum
        signal.signal(signum, self._old.pop(signum))

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
        return False

    @property
    def status(self) -> int:
        """The exit status of a run this stopped: 128 + the signal's number (130 for Ctrl-C)."""
        return 128 + int(self.requested or signal.SIGINT)

    def on_step_end(self, run, rec):
        if not self.requested:
            return None
        by = "request" if self.requested == signal.SIGINT else signal.Signals(self.requested).name
        return Stop("interrupted", f"stopped by {by} at step {rec.step}")


def _pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


# How the columns of an evaluation record (steepest.records) read in the terminal; each set's accuracy
# is its name and a percentage (``train 97.10%  val 96.50%``), the other columns are not shown.
LINE_FORMATS = {"train_loss": "loss {:.4f}", "grad_norm": "‖∇L‖ {:.3g}", "lr": "lr {:.3g}", "seconds": "{:.2f} s"}


def epoch_line(rec: dict, total_epochs, at_steps=False) -> str:
    """One evaluation record as a line: ``epoch 3/5 …``, or ``step 120 …`` when evaluating every k steps."""
    of = f"/{total_epochs}" if total_epochs else ""
    parts = [f"step {rec['step']:>5}" if at_steps else f"epoch {rec['epoch']:>3}{of}"]
    for c in evaluation_columns(evaluated_sets([rec])):
        if c.endswith("_acc"):
            parts.append(f"{c[:-4]} {_pct(rec.get(c))}")
        elif c in LINE_FORMATS and rec.get(c) is not None:
            parts.append(LINE_FORMATS[c].format(rec[c]))
    return "  ".join(parts)


class Progress(Listener):
    """Progress bars on stderr (a TTY, not --quiet) and one line per evaluation on stdout.

    The bars are touched at most every ``every`` steps and every ``min_seconds``, so watching costs
    nothing measurable. Evaluations every k steps (``at_steps``) print a line at most every
    ``min_seconds`` (the last one always), so a long full-batch run does not flood the terminal; the
    metrics files and ``--json`` have every record.
    """

    def __init__(self, out, total_epochs, steps_per_epoch, start_epoch=0, start_batch=0, every=10,
                 at_steps=False, min_seconds=0.1):
        self.out, self.total, self.every, self.at_steps = out, total_epochs, every, at_steps
        self.min_seconds, self._bar_t, self._line_t, self._held = min_seconds, 0.0, 0.0, None
        self.bars = None
        if out.bars:
            from tqdm import tqdm

            self.bars = (
                tqdm(total=total_epochs, initial=start_epoch, desc="epochs", unit="epoch",
                     position=0, file=sys.stderr, dynamic_ncols=True),
                tqdm(total=steps_per_epoch, initial=start_batch, desc=f"epoch {start_epoch + 1}",
                     unit="step", position=1, leave=False, file=sys.stderr, dynamic_ncols=True),
            )

    def on_step_end(self, run, rec):
        if self.bars is None or rec.step % self.every:
            return None
        now = time.monotonic()
        if now - self._bar_t < self.min_seconds:
            return None
        self._bar_t, st, bar = now, run.state, self.bars[1]
        bar.update(st.batch - bar.n)
        rows = max(st.epoch_rows, 1)
        bar.set_postfix({"loss": f"{rec.loss:.4f}" if not st.epoch_rows else f"{st.epoch_loss / rows:.4f}",
                         "acc": f"{st.epoch_correct / rows:.3f}", "‖∇L‖": f"{rec.grad_norm:.3g}"}, refresh=False)
        return None

    def on_epoch_end(self, run):
        if self.bars is not None:
            epochs, batches = self.bars
            epochs.update(1)
            last = run.state.last_epoch
            post = {"loss": f"{last['train_loss']:.4f}"} if last else {}
            if last.get("test_acc") is not None:
                post["test"] = _pct(last["test_acc"])
            epochs.set_postfix(post, refresh=False)
            batches.reset()
            batches.set_description(f"epoch {run.state.epoch + 1}", refresh=False)
            batches.set_postfix({}, refresh=False)
        return None

    def on_evaluation(self, run, rec):
        now = time.monotonic()
        if not self.at_steps or now - self._line_t >= self.min_seconds:
            self._line_t, self._held = now, None
            self.out.say(epoch_line(rec, self.total, self.at_steps))
        else:
            self._held = rec
        return None

    def on_train_end(self, run, stop):
        if self._held is not None:
            self.out.say(epoch_line(self._held, self.total, self.at_steps))
            self._held = None
        self.close()

    def close(self) -> None:
        if self.bars is not None:
            for bar in reversed(self.bars):
                bar.close()
            self.bars = None


class JsonLines(Listener):
    """``--json``: one object per evaluation on stdout, with the keys :data:`EPOCH_KEYS`."""

    def __init__(self, out):
        self.out = out

    def on_evaluation(self, run, rec):
        self.out.emit({"event": "epoch", **{k: rec.get(k) for k in EPOCH_KEYS}})
        return None
