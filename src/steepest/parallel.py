"""Data-parallel gradient descent over MPI: K processes, one global batch, the same θ on all.

Every process (*rank*) holds θ and the optimizer state, and all take the same steps:

* **sharding is a kind of batches** (:class:`ShardedBatches`): the global batch of a step — the same
  rows, in the same order, as in one process — is split as evenly as possible, rank r taking rows
  ``[r·⌊B/K⌋ + min(r, B mod K), …)`` (the first ``B mod K`` ranks one row more); full-batch descent splits
  the training set once, the same way;
* **the allreduce is one transform** (:class:`Allreduce`): rank r's mean gradient ``g_r`` over its
  ``n_r`` rows becomes the global one by one in-place ``Allreduce`` (sum) of one buffer —
  ``[n_r·g_r, n_r·L_r, correct_r, n_r, votes…]`` — and a division:
  ``g = Σ_r n_r g_r / Σ_r n_r`` (= the mean over the B rows: ranks with uneven rows weigh as their rows),
  ``L = Σ_r n_r L_r / B``. The full-training-set gradient of an evaluation (and of the ‖∇L‖ < ε rule) is
  reduced the same way, so monitoring and the stopping rules see the global numbers;
* **decisions of one process are agreed** (:class:`Agreed`): a rule that reads the clock or a signal
  (the time budget, Ctrl-C, a callback) votes in the next allreduce, and every rank stops at the same step;
* **θ is checked** (:class:`ThetaCheck`): after every epoch each rank's CRC-32 of θ is compared; a
  difference stops every rank with :class:`~steepest.errors.ParallelError`;
* **a dead rank does not hang the others** (:class:`Watchdog`): a rank waiting in a collective call
  whose peer process on the same host has ended writes one line and exits with status 3 — the line
  written by a helper process (:mod:`steepest._lastword`) that outlives the rank, should the launcher
  SIGKILL it first.

mpi4py is imported only by :func:`world` (and only when a launcher says there are several processes);
the classes here take any communicator with mpi4py's interface.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import threading
import time
import zlib

import numpy as np

from ._lastword import LastWord, alive
from .batches import Batch, Batches
from .errors import ConfigError, ParallelError
from .events import Listener, Stop

FAULT_STATUS = 3   # the exit status of a rank that stops because another one ended
# What the Watchdog's line says to do next (the command line puts its run directory in it).
resume_hint = "continue from the last checkpoint, with any number of processes"
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_size() -> int:
    """How many processes an MPI launcher (mpiexec/mpirun of MPICH or Open MPI) started, from its
    environment variables; 1 when not launched so. Imports nothing."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def world():
    """``MPI.COMM_WORLD`` when this process is one of several started by an MPI launcher, else None.

    mpi4py is imported only then. Raises :class:`ConfigError` when the launcher started several
    processes but mpi4py is missing or sees a world of one (an mpiexec of another MPI than mpi4py's).
    """
    size = launched_size()
    if size <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError(f"started by an MPI launcher as one of {size} processes, but mpi4py is not "
                          "installed: pip install 'steepest[mpi]' (or mpi4py built for your cluster's MPI)") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != size:
        raise ConfigError(f"the launcher started {size} processes but mpi4py's MPI sees {comm.Get_size()}: "
                          "this mpiexec belongs to another MPI than mpi4py; use the mpiexec of the MPI "
                          "mpi4py was built with (python -c 'import mpi4py; print(mpi4py.get_config())')")
    return comm


def bounds(n: int, k: int, r: int) -> tuple[int, int]:
    """Rank r's rows ``[lo, hi)`` of n rows split over k ranks as evenly as possible."""
    q, m = divmod(n, k)
    lo = r * q + min(r, m)
    return lo, lo + q + (r < m)


class ShardedBatches(Batches):
    """:class:`~steepest.batches.Batches` of which this rank sees its shard: the global batch
    ``(epoch, index)`` is the one of a single process; rank r gathers its :func:`bounds` of those rows."""

    def __init__(self, X, y, batch_size, seed, rank: int, size: int):
        super().__init__(X, y, batch_size, seed)
        smallest = self.n - (self.per_epoch - 1) * self.size  # the last batch of an epoch may be short
        if size > smallest:
            what = (f"the {self.n} training samples" if self.full else
                    f"batches of {self.size} row{'s' * (self.size != 1)}"
                    + (f" (the last of each epoch has {smallest})" if smallest < self.size else ""))
            raise ParallelError(f"{size} processes for {what}: each process needs at least one row of every "
                                f"batch; start at most {smallest} (mpiexec -n {smallest})"
                                + ("" if self.full else " or use a larger batch"))
        self.rank, self.ranks = rank, size
        lo, hi = bounds(self.n, size, rank)
        self.Xs, self.ys = X[lo:hi], y[lo:hi]

    def whole(self):
        """This rank's contiguous shard of the training set (the full batch of full-batch descent)."""
        return self.Xs, self.ys

    def batch(self, epoch: int, index: int) -> Batch:
        last = index == self.per_epoch - 1
        if self.full:
            return Batch(epoch, index, self.Xs, self.ys, None, last, same_input=True,
                         offset=bounds(self.n, self.ranks, self.rank)[0], total=self.n)
        rows = self.order(epoch)[index * self.size:(index + 1) * self.size]
        total = len(rows)
        lo, hi = bounds(total, self.ranks, self.rank)
        rows = rows[lo:hi]
        Xb, yb = self._Xbuf[:len(rows)], self._ybuf[:len(rows)]
        np.take(self.X, rows, axis=0, out=Xb)
        np.take(self.y, rows, out=yb)
        return Batch(epoch, index, Xb, yb, rows, last, offset=lo, total=total)


class Allreduce:
    """The transform that sums a step's gradient over the ranks: one in-place ``Allreduce`` of
    ``buf = [n_r·g_r (p), n_r·L_r, correct_r, n_r, votes (v)]``, then ``g ← buf[:p] / Σ n_r``.

    ``g`` (a view of ``buf``) is the step's gradient buffer: the network writes ``g_r`` into it directly.
    ``wish`` holds this rank's votes for the next reduction, ``votes`` those of all ranks at the last one.
    """

    def __init__(self, comm, p: int, dtype, votes: int = 0):
        self.comm = comm
        self.buf = np.zeros(p + 3 + votes, dtype=dtype)
        self.g, self.tail = self.buf[:p], self.buf[p:]
        self.wish, self.votes = np.zeros(votes), np.zeros(votes)
        self.waiting_since = None   # when this rank entered the collective it is in (for the Watchdog)

    def reduce(self, loss: float, correct: int, rows: int) -> tuple[float, int, int]:
        """``g`` (this rank's mean over ``rows``) → the mean over all ranks' rows, in place; returns the
        global (mean loss, correct, rows)."""
        from mpi4py import MPI

        t = self.tail
        self.g *= t.dtype.type(rows)
        t[0], t[1], t[2], t[3:] = loss * rows, correct, rows, self.wish
        with self.waiting():
            self.comm.Allreduce(MPI.IN_PLACE, self.buf, op=MPI.SUM)
        n = float(t[2])
        self.g /= t.dtype.type(n)
        self.votes[:] = t[3:]
        return float(t[0]) / n, int(round(float(t[1]))), int(round(n))

    def __call__(self, grad) -> None:
        if grad.cached:  # an evaluation's full gradient: reduced already
            return
        grad.loss, grad.correct, grad.rows = self.reduce(grad.loss, grad.correct, grad.rows)
        grad.gg = float(np.dot(grad.g, grad.g))
        grad.norm = float(np.sqrt(grad.gg))

    def waiting(self):
        return _Waiting(self)

    def allgather(self, value):
        with self.waiting():
            return self.comm.allgather(value)


class _Waiting:
    def __init__(self, reducer):
        self.reducer = reducer

    def __enter__(self):
        self.reducer.waiting_since = time.monotonic()

    def __exit__(self, *exc):
        self.reducer.waiting_since = None
        return False


class Agreed(Listener):
    """A listener whose stop is this process's own decision (it reads the clock, a signal, a callback):
    the stop is voted in the next reduction and taken by every rank at the first step after it."""

    def __init__(self, inner):
        self.inner, self.key, self.wish = inner, inner.key, None
        self.reducer, self.slot = None, None

    def _want(self, stop):
        if stop is not None and self.wish is None:
            self.wish = stop
            self.reducer.wish[self.slot] = 1

    def on_train_begin(self, run):
        self.inner.on_train_begin(run)

    def on_step_end(self, run, rec):
        self._want(self.inner.on_step_end(run, rec))
        if self.reducer.votes[self.slot] > 0:
            reason = getattr(self.inner, "reason", "interrupted")
            why = {"time_budget": "the time budget ran out on another process of the run first (each reads "
                                  "its own clock)",
                   "interrupted": "another process of the run was interrupted"}.get(reason,
                                                                                   "another process of the run stopped")
            return self.wish or Stop(reason, f"stopped at step {rec.step}: {why}")
        return None

    def on_evaluation(self, run, rec):
        self._want(self.inner.on_evaluation(run, rec))

    def on_epoch_end(self, run):
        self._want(self.inner.on_epoch_end(run))

    def on_train_end(self, run, stop):
        self.inner.on_train_end(run, stop)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, values, arrays):
        self.inner.load_state_dict(values, arrays)


def crc(a: np.ndarray) -> int:
    """CRC-32 of an array's bytes."""
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8))


class ThetaCheck(Listener):
    """After every epoch, compares θ's CRC-32 across the ranks; a difference raises ParallelError on all."""

    def __init__(self, reducer):
        self.reducer = reducer

    def on_epoch_end(self, run):
        sums = self.reducer.allgather(crc(run.theta))
        if len(set(sums)) > 1:
            odd = [r for r, s in enumerate(sums) if s != sums[0]]
            raise ParallelError(f"θ is no longer the same on the {len(sums)} processes after epoch "
                                f"{run.state.epoch} (step {run.state.step}): rank(s) {', '.join(map(str, odd))} "
                                "differ from rank 0; run every process with the same steepest, NumPy and MPI "
                                "build and the same options")
        return None


class Watchdog(Listener):
    """A rank whose peer has died ends with one line on stderr and status :data:`FAULT_STATUS` — no hang.

    While training, a thread checks every ``period`` seconds whether this rank is stuck in a collective
    call (for more than ``period``) while a peer process on the same host has ended; and the signals by
    which launchers tell the survivors (SIGUSR1 from MPICH's ``mpiexec -disable-auto-cleanup``, SIGTERM
    from Open MPI) do the same. (MPICH's ``mpiexec`` by default SIGKILLs every rank when one dies, and
    with ``-disable-auto-cleanup`` too when a signal ended that one — often before its SIGUSR1: then the
    rank's :class:`~steepest._lastword.LastWord` helper writes the line.)"""

    def __init__(self, reducer, peers, period=1.0):
        self.reducer, self.peers, self.period = reducer, peers, period
        self.done = threading.Event()
        self.speaking = threading.Lock()  # the signal handler and the thread may both fault: one line
        self.last = None

    def dead_peer(self):
        for rank, pid in self.local_peers():
            if not alive(pid):
                return rank, pid
        return None

    def local_peers(self):
        """``[(rank, pid), …]`` of the other ranks on this host."""
        host = socket.gethostname()
        return [(rank, pid) for rank, (h, pid) in enumerate(self.peers) if h == host and pid != os.getpid()]

    def watch(self):
        try:
            self._watch()
        finally:
            for end in self.told or ():
                end.close()

    def _watch(self):
        r = self.reducer
        while not self.done.is_set():
            if self.told is not None:
                ready, _, _ = select.select([self.told[0]], [], [], self.period)
                if ready:
                    got = [n for n in self.told[0].recv(512) if n in _TOLD]
                    if got:
                        self.fault(f"the launcher sent {signal.Signals(got[0]).name} (another process failed, or the job was stopped)")
            else:
                self.done.wait(self.period)
            since = r.waiting_since
            if since is None or time.monotonic() - since < self.period:
                continue
            dead = self.dead_peer()
            if dead is not None:
                self.fault(f"process {dead[1]} (rank {dead[0]}) has ended")

    def line(self, what: str) -> str:
        r = self.reducer.comm
        return f"steepest: error: rank {r.Get_rank()} of {r.Get_size()}: {what}; {resume_hint}\n"

    def fault(self, what: str):
        """One line on stderr, and this process ends with :data:`FAULT_STATUS`."""
        if not self.speaking.acquire(blocking=False):
            return  # another thread (or this one, interrupted by the signal handler) is saying it
        line = self.line(f"{what}, so this one stops too")
        if self.last is not None:
            self.last.say(line)  # written by the helper once this process has ended, even if SIGKILLed
        else:
            os.write(2, line.encode())
        os._exit(FAULT_STATUS)

    def on_train_begin(self, run):
        # MPICH's proxy may SIGKILL this rank before it can speak: a helper, out of its reach, then says it.
        try:
            self.last = LastWord([(pid, self.line(f"process {pid} (rank {rank}) has ended and the launcher "
                                                  "killed this one too"))
                                  for rank, pid in self.local_peers()])
        except OSError:
            self.last = None
        # How launchers tell the survivors: MPICH's mpiexec (without auto-cleanup) SIGUSR1, Open MPI SIGTERM.
        # The signal may land on any thread (OpenBLAS's included), and this one may be inside MPI, where a
        # Python handler never runs; but the interpreter's C handler writes the signal's number to the
        # wakeup fd from whichever thread took it, and the watchdog thread reads that at once.
        self.told = None
        if threading.current_thread() is threading.main_thread():
            self.told = socket.socketpair()
            for end in self.told:
                end.setblocking(False)
            self.old = {s: signal.signal(s, self._signalled) for s in _TOLD}
            self.old_fd = signal.set_wakeup_fd(self.told[1].fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self.watch, name="steepest-watchdog", daemon=True).start()

    def on_train_end(self, run, stop):
        if self.told is not None:  # first untie the fd from the signals, then let the thread close it
            signal.set_wakeup_fd(self.old_fd)
            for s, handler in self.old.items():
                signal.signal(s, handler)
        self.done.set()
        if self.last is not None:
            self.last.done()

    def _signalled(self, signum, frame):
        self.fault(f"the launcher sent {signal.Signals(signum).name} (another process failed, or the job was stopped)")


_TOLD = {signal.SIGUSR1, signal.SIGTERM}


def fingerprint(net, state, X, y, settings: dict) -> str:
    """A hash of what must be the same on every rank: the network, θ, the optimizer state's position,
    the data's shape and a sample of its bytes, and the training settings."""
    step = max(1, X.shape[0] // 1024)
    what = {"sizes": list(net.sizes), "dtype": str(net.dtype), "theta": crc(state.theta), "step": state.step,
            "epoch": state.epoch, "X": [list(X.shape), str(X.dtype), crc(X[::step])], "y": crc(y),
            **settings}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=repr).encode()).hexdigest()


class DataParallel:
    """The parts :func:`steepest.train` adds for a run over the ranks of ``comm``."""

    def __init__(self, comm, net):
        self.comm, self.net = comm, net
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.reducer = None

    def __call__(self, grad) -> None:
        """The :class:`Allreduce` transform (built once the number of votes is known)."""
        self.reducer(grad)

    def reduce(self, loss, correct, rows):
        return self.reducer.reduce(loss, correct, rows)

    def batches(self, X, y, batch_size, seed) -> ShardedBatches:
        return ShardedBatches(X, y, batch_size, seed, self.rank, self.size)

    def parts(self, listeners, calls, rules, step, fp: str) -> list:
        """The run's listeners with the data-parallel ones: the callbacks and the time budget agreed (they
        read this process's clock), the θ check, the watchdog; the step's gradient in the buffer."""
        from .stopping import TimeBudget

        out = self.listeners(listeners, local=[*calls, *(r for r in rules if isinstance(r, TimeBudget))])
        return out + [self.attach(step, fp)]

    def listeners(self, listeners, local) -> list:
        """``listeners`` with those in ``local`` wrapped in :class:`Agreed`, the θ check and the watchdog."""
        out = [Agreed(l) if (l in local and not isinstance(l, Agreed)) else l for l in listeners]
        agreed = [l for l in out if isinstance(l, Agreed)]
        self.reducer = Allreduce(self.comm, self.net.n_params, self.net.dtype, votes=len(agreed))
        for slot, l in enumerate(agreed):
            l.reducer, l.slot = self.reducer, slot
        return out + [ThetaCheck(self.reducer)]

    def attach(self, step, fp: str) -> Watchdog:
        """Make the step's gradient the reduction buffer; check every rank was started alike."""
        step.g = self.reducer.g
        fp = f"{fp} {len(self.reducer.wish)}"  # the buffers' lengths: each rank the same agreed rules
        seen = self.reducer.allgather((fp, socket.gethostname(), os.getpid()))
        odd = [r for r, (f, _, _) in enumerate(seen) if f != seen[0][0]]
        if odd:
            raise ParallelError(f"the {self.size} processes were not started alike: rank(s) "
                                f"{', '.join(map(str, odd))} have another configuration, starting θ, data or callback "
                                "than rank 0; start every process with the same command, options and data")
        return Watchdog(self.reducer, [(h, pid) for _, h, pid in seen])
