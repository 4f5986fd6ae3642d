"""Watching training: Ctrl-C handling, the progress bars, one line (or JSON object) per epoch."""

from __future__ import annotations

import signal
import sys
import threading

# The keys of each --json epoch line, in order: scripts and benchmarks rely on them.
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_acc", "test_acc", "grad_norm", "lr", "samples", "seconds")


class Interrupt:
    """Inside the block, the first Ctrl-C only sets :attr:`requested` (training stops after the
    current step and saves a checkpoint); a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._old)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


def epoch_line(rec: dict, total_epochs) -> str:
    of = f"/{total_epochs}" if total_epochs else ""
    parts = [f"epoch {rec['epoch']:>3}{of}", f"loss {rec['train_loss']:.4f}", f"train {_pct(rec.get('train_acc'))}"]
    if "val_acc" in rec:
        parts.append(f"val {_pct(rec['val_acc'])}")
    if "test_acc" in rec:
        parts.append(f"test {_pct(rec['test_acc'])}")
    if rec.get("grad_norm") is not None:
        parts.append(f"‖∇L‖ {rec['grad_norm']:.3g}")
    parts += [f"lr {rec['lr']:.3g}", f"{rec['seconds']:.2f} s"]
    return "  ".join(parts)


class Reporter:
    """Progress bars on stderr (a TTY, not --quiet), epoch lines, --json epoch objects.

    :meth:`step` runs after every optimizer step but touches the bars only every ``every``
    steps, so watching costs nothing measurable.
    """

    def __init__(self, out, total_epochs, steps_per_epoch, start_epoch=0, start_batch=0, every=10):
        self.out, self.total, self.every = out, total_epochs, every
        self.bars = None
        if out.bars:
            from tqdm import tqdm

            self.bars = (
                tqdm(total=total_epochs, initial=start_epoch, desc="epochs", unit="epoch",
                     position=0, file=sys.stderr, dynamic_ncols=True),
                tqdm(total=steps_per_epoch, initial=start_batch, desc=f"epoch {start_epoch + 1}",
                     unit="step", position=1, leave=False, file=sys.stderr, dynamic_ncols=True),
            )

    def step(self, state) -> None:
        if self.bars is None or state.step % self.every:
            return
        bar = self.bars[1]
        bar.update(state.batch - bar.n)
        rows = max(state.epoch_rows, 1)
        bar.set_postfix({"loss": f"{state.epoch_loss / rows:.4f}", "acc": f"{state.epoch_correct / rows:.3f}",
                         "‖∇L‖": f"{state.history.steps['grad_norm'][-1]:.3g}"}, refresh=False)

    def epoch(self, state, rec: dict) -> None:
        if self.bars is not None:
            epochs, batches = self.bars
            epochs.update(1)
            post = {"loss": f"{rec['train_loss']:.4f}"}
            if rec.get("test_acc") is not None:
                post["test"] = _pct(rec["test_acc"])
            epochs.set_postfix(post)
            batches.reset()
            batches.set_description(f"epoch {state.epoch + 1}", refresh=False)
            batches.set_postfix({}, refresh=False)
        if self.out.json:
            self.out.emit({"event": "epoch", **{k: rec.get(k) for k in EPOCH_KEYS}})
        else:
            self.out.say(epoch_line(rec, self.total))

    def close(self) -> None:
        if self.bars is not None:
            for bar in reversed(self.bars):
                bar.close()
            self.bars = None
