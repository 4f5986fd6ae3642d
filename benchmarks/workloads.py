"""The benchmark workloads: one network, one recipe, three libraries, and the BLAS floor under them.

Every timed function here returns seconds of wall time for exactly one unit of work (an epoch, a
full-batch step, a run to a target accuracy) and leaves the setup (imports, data loading, building
the model) outside the timer. :mod:`run` decides the order, the repeats and the report.

The network is ``784-256-128-10`` ReLU with softmax cross-entropy, float32, trained by SGD with
momentum 0.9 (PyTorch's form, which steepest's ``SGD`` and scikit-learn's ``nesterovs_momentum=False``
share). Each library gets the data in the form it is fastest with, loaded before any timer starts:

* steepest: ``X`` as uint8, scaled by ``input_scale=1/255`` one batch at a time (its design);
* PyTorch: ``X/255`` as one float32 tensor; each epoch one ``randperm`` gather, then contiguous
  slices — no DataLoader, no per-batch gather; ``nn.Linear`` stack, ``CrossEntropyLoss``, ``optim.SGD``;
* scikit-learn: ``X/255`` as float32 (``MLPClassifier`` keeps float32), one ``partial_fit`` = one epoch.

The GEMM floor of a workload is the time of exactly its matrix products — per step, forward
``A0@W1, A1@W2, A2@W3`` and backward ``A2ᵀδ3, δ3@W3ᵀ, A1ᵀδ2, δ2@W2ᵀ, A0ᵀδ1`` — at its batch shapes,
summed over its steps, called through ``np.matmul`` with preallocated ``out=`` arrays and the same
operand layouts (transposed views) steepest uses. Nothing can train this network faster with this BLAS.

Workload (d), memory and import time in fresh processes, is in memory.py.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

SIZES = (784, 256, 128, 10)
LR = 0.05
MOMENTUM = 0.9
SEED = 0


# ---------------------------------------------------------------------------------------------- data

@dataclass
class Data:
    """Training and test arrays as the loader gives them: ``X (n, 784)`` uint8, ``y (n,)`` int64."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


def load_data(spec: str = "mnist", data_dir=None) -> Data:
    """``"mnist"`` (all 60,000), ``"mnist:N"`` (its first N rows) or ``"synthetic:N"`` (random pixels).

    MNIST comes through :func:`steepest.data.load_dataset` (``$STEEPEST_DATA``, the cache, or a download).
    Synthetic data needs no files: uniform uint8 pixels and labels from a fixed random linear map, so a
    smoke test can run anywhere.
    """
    name, _, count = spec.partition(":")
    limit = int(count) if count else None
    if name == "synthetic":
        n = limit or 4096
        rng = np.random.default_rng(SEED)
        X = rng.integers(0, 256, (n + n // 4, SIZES[0]), dtype=np.uint8)
        y = (X[:, :SIZES[-1]].astype(np.int64) * rng.normal(size=SIZES[-1])).argmax(axis=1)
        return Data(X[:n], y[:n], X[n:], y[n:], f"synthetic, {n} random rows")
    if name != "mnist":
        raise SystemExit(f"unknown data {spec!r}: use mnist, mnist:N or synthetic:N")
    from steepest.data import load_dataset
    ds = load_dataset("mnist", data_dir=data_dir)
    X, y = ds.X_train, ds.y_train
    if limit:
        X, y = X[:limit], y[:limit]
    return Data(np.ascontiguousarray(X), y.astype(np.int64), ds.X_test, ds.y_test.astype(np.int64),
                f"MNIST from {ds.source}" + (f", first {limit} rows" if limit else ""))


def as_float01(X: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [0, 1] (what PyTorch and scikit-learn are given)."""
    out = np.empty(X.shape, dtype=np.float32)
    np.multiply(X, np.float32(1 / 255), out=out)
    return out


def set_threads(n: int):
    """Limit every BLAS and OpenMP pool in this process (and torch's intra-op pool) to ``n`` threads.

    Returns the threadpoolctl limiter (keep it alive) or None without threadpoolctl.
    """
    limiter = None
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=n)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return limiter


# ------------------------------------------------------------------------------------ the libraries

def _steps(n: int, batch: int) -> list[int]:
    """The batch sizes of one epoch, in order: ⌊n/B⌋ full batches and the remainder."""
    full, rest = divmod(n, batch)
    return [batch] * full + ([rest] if rest else [])


class Steepest:
    """One epoch = one ``steepest.train(..., epochs=1, monitor=False)`` call, continuing from the last θ.

    ``threads=N`` runs it at N BLAS threads; ``measured=True`` lets the thread count be chosen as
    ``steepest train`` chooses it by default (:class:`steepest.threads.MeasuredThreads`, one policy
    for all the runner's epochs, each of which begins with a measurement). Otherwise it runs at the
    process's limit (``--threads``). ``kernels``: the element-wise code, ``"auto"`` (numba's fused passes
    where numba imports, as ``steepest.train`` by default) or ``"numpy"`` (the reference path).
    """

    def __init__(self, data: Data, batch, lr=LR, sizes=SIZES, threads=None, measured=False, name="steepest",
                 kernels="auto"):
        from steepest import MLP, SGD, train
        self._train, self._SGD = train, SGD
        self.net = MLP(list(sizes), "relu", input_scale=1 / 255)
        self.theta = self.net.init(seed=SEED)
        self.X, self.y, self.batch, self.lr = data.X, data.y, batch, lr
        self.epoch, self.threads, self.name, self.kernels = 0, threads, name, kernels
        self.history_seconds = None   # steepest's own "seconds" of the last epoch (steps only)
        self.policy = None
        if measured:
            from steepest.threads import MeasuredThreads
            self.policy = MeasuredThreads()

    def _limits(self):
        import contextlib
        if self.policy is not None:
            return self.policy.blas.kept()
        if self.threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=self.threads, user_api="blas")

    def run(self) -> float:
        with self._limits():
            t = time.perf_counter()
            res = self._train(self.net, self.theta, self.X, self.y, optimizer=self._SGD(momentum=MOMENTUM),
                              lr=self.lr, batch_size=self.batch, epochs=1, monitor=False, seed=self.epoch,
                              listeners=[self.policy] if self.policy is not None else [], kernels=self.kernels)
            dt = time.perf_counter() - t
        self.theta, self.epoch = res.theta, self.epoch + 1
        self.history_seconds = res.history.epochs[-1]["seconds"]
        if res.stop_reason != "max_epochs":
            raise RuntimeError(f"steepest stopped early: {res.stop_message}")
        return dt


def torch_mlp(sizes=SIZES):
    import torch
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def copy_theta_to_torch(net, theta, model):
    """Load steepest's θ into the ``nn.Linear`` stack (``weight = Wᵀ``) so both start from one point."""
    import torch
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for (W, b), lin in zip(net.unpack(theta), linears):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))


class Torch:
    """The idiomatic fast PyTorch loop: tensors in memory, one ``randperm`` gather per epoch, slices."""

    name = "PyTorch"

    def __init__(self, data: Data, batch, lr=LR, sizes=SIZES, X01=None):
        import torch
        self.torch = torch
        torch.manual_seed(SEED)
        self.X = torch.from_numpy(as_float01(data.X) if X01 is None else X01)
        self.y = torch.from_numpy(data.y)
        self.model = torch_mlp(sizes)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=MOMENTUM)
        self.loss = torch.nn.CrossEntropyLoss()
        self.batch = data.n if batch in (None, "full") else batch
        self.gen = torch.Generator().manual_seed(SEED)

    def run(self) -> float:
        torch, n, B = self.torch, self.X.shape[0], self.batch
        t = time.perf_counter()
        if B < n:
            perm = torch.randperm(n, generator=self.gen)
            Xs, ys = self.X.index_select(0, perm), self.y.index_select(0, perm)
        else:
            Xs, ys = self.X, self.y   # full batch: the data in their order, as steepest does
        for s in range(0, n, B):
            self.opt.zero_grad()
            self.loss(self.model(Xs[s:s + B]), ys[s:s + B]).backward()
            self.opt.step()
        return time.perf_counter() - t


class Sklearn:
    """``MLPClassifier(solver="sgd", momentum=0.9, nesterovs_momentum=False, alpha=0)``; one partial_fit."""

    name = "scikit-learn"

    def __init__(self, data: Data, batch, lr=LR, sizes=SIZES, X01=None):
        from sklearn.neural_network import MLPClassifier
        self.X = as_float01(data.X) if X01 is None else X01
        self.y = data.y
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", solver="sgd",
                                 alpha=0.0, batch_size=data.n if batch in (None, "full") else batch,
                                 learning_rate="constant", learning_rate_init=lr, momentum=MOMENTUM,
                                 nesterovs_momentum=False, shuffle=True, random_state=SEED)
        self.classes = np.arange(sizes[-1])
        self.started = False

    def run(self) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            if self.started:
                self.clf.partial_fit(self.X, self.y)
            else:
                self.clf.partial_fit(self.X, self.y, classes=self.classes)
                self.started = True
            return time.perf_counter() - t


# ------------------------------------------------------------------------------------ the BLAS floor

class GemmFloor:
    """The 8 matrix products of each training step, for every step of one epoch (see module docstring).

    Operands are random float32 arrays, one set per batch shape, allocated once; ``run()`` times one
    epoch's worth of products.
    """

    name = "GEMM floor"

    def __init__(self, n, batch, sizes=SIZES):
        self.steps = _steps(n, n if batch in (None, "full") else batch)
        rng = np.random.default_rng(SEED)
        f32 = np.float32
        self.W = [(rng.standard_normal((a, b)) * 0.05).astype(f32) for a, b in zip(sizes[:-1], sizes[1:])]
        self.dW = [np.empty_like(W) for W in self.W]
        self.bufs = {}
        for B in set(self.steps):
            A = [rng.random((B, s), dtype=f32) for s in sizes]
            D = [rng.standard_normal((B, s), dtype=f32) * f32(1e-3) for s in sizes[1:]]
            self.bufs[B] = (A, D)
        self.flops = sum(step_flops(B, sizes) for B in self.steps)

    def _step(self, A, D):
        W, dW, L = self.W, self.dW, len(self.W)
        for l in range(L):                              # forward: A[l+1] = A[l] @ W[l]
            np.matmul(A[l], W[l], out=A[l + 1])
        for l in range(L - 1, -1, -1):                  # backward
            np.matmul(A[l].T, D[l], out=dW[l])          # dW[l] = A[l]ᵀ δ[l]
            if l > 0:
                np.matmul(D[l], W[l].T, out=D[l - 1])   # δ[l-1] ← δ[l] W[l]ᵀ (⊙ f' not counted)

    def run(self) -> float:
        bufs, step = self.bufs, self._step
        t = time.perf_counter()
        for B in self.steps:
            A, D = bufs[B]
            step(A, D)
        return time.perf_counter() - t


def step_flops(B, sizes=SIZES) -> int:
    """Floating-point operations of the 8 products of one step at batch B (2·m·n·k each)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * B * a * b for a, b in pairs)
    dW = fwd
    dA = sum(2 * B * a * b for a, b in pairs[1:])
    return fwd + dW + dA


def sgemm_rate(shapes, seconds=0.15, repeats=5) -> list[dict]:
    """GFLOP/s of ``np.matmul(a, b, out=c)`` in float32 for each ``(m, k, n)``: median of ``repeats``."""
    rows = []
    rng = np.random.default_rng(SEED)
    for m, k, n in shapes:
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        reps = max(1, int(seconds / max(time.perf_counter() - t, 1e-7)))
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(reps):
                np.matmul(a, b, out=c)
            rates.append(2 * m * k * n * reps / (time.perf_counter() - t) / 1e9)
        rows.append({"shape": (m, k, n), "gflops": float(np.median(rates)),
                     "min": float(min(rates)), "max": float(max(rates))})
    return rows


# ------------------------------------------------------------------------------- time to accuracy

@dataclass
class Recipe:
    """A 2-hidden-layer MLP trained by SGD with (Nesterov) momentum and a one-cycle learning rate."""

    hidden: tuple = (256, 128)
    batch: int = 128
    max_lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    epochs: int = 5             # the one-cycle schedule spans this many epochs
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    target: float = 0.98
    seed: int = SEED

    def describe(self) -> str:
        return (f"784-{'-'.join(map(str, self.hidden))}-10 ReLU, He init, batch {self.batch}, SGD "
                f"{'Nesterov ' if self.nesterov else ''}momentum {self.momentum}, one-cycle "
                f"(cosine, max lr {self.max_lr}, pct_start {self.pct_start}, div {self.div_factor:g}, "
                f"final div {self.final_div_factor:g}, no momentum cycling) over {self.epochs} epochs, "
                f"float32, no augmentation, no weight decay")


def time_to_accuracy(lib: str, data: Data, recipe: Recipe, X01=None, Xt01=None) -> dict:
    """Train with ``recipe`` epoch by epoch; test accuracy is measured after each epoch outside the timer.

    Both libraries start from the same θ₀ (steepest's He init, copied into PyTorch) and visit the
    batches in the same order (steepest's per-epoch permutation), so their trajectories agree up to
    float rounding and the comparison is one of speed. Returns ``seconds`` (training time until the
    first epoch at or above the target, or None), ``epochs`` and the per-epoch test ``acc``, test
    ``loss`` and training ``times``.
    """
    from steepest import MLP, SGD, train
    from steepest.schedules import make_schedule

    sizes = (SIZES[0], *recipe.hidden, SIZES[-1])
    n, B = data.n, recipe.batch
    nb = -(-n // B)
    total = recipe.epochs * nb
    net = MLP(list(sizes), "relu", input_scale=1 / 255)
    theta0 = net.init(seed=recipe.seed)
    accs, losses, times = [], [], []
    if lib == "steepest":
        sched = make_schedule("onecycle", recipe.max_lr, total_steps=total, pct_start=recipe.pct_start,
                              div_factor=recipe.div_factor, final_div_factor=recipe.final_div_factor)
        opt = SGD(momentum=recipe.momentum, nesterov=recipe.nesterov)
        # One train() call, as a user would make it; the test evaluation runs in the epoch callback
        # and its duration is taken out of the clock.
        clock = {"excluded": 0.0, "last": 0.0}

        def evaluate(event, state):
            if event != "epoch":
                return None
            t1 = time.perf_counter()
            cum = t1 - clock["t0"] - clock["excluded"]
            times.append(cum - clock["last"])
            clock["last"] = cum
            accs.append(float(np.mean(net.predict(state.theta, data.X_test) == data.y_test)))
            losses.append(float(net.loss(state.theta, data.X_test, data.y_test)))
            clock["excluded"] += time.perf_counter() - t1
            return None

        clock["t0"] = time.perf_counter()
        res = train(net, theta0, data.X, data.y, optimizer=opt, lr=sched, batch_size=B,
                    epochs=recipe.epochs, monitor=False, seed=recipe.seed, callback=evaluate)
        if res.stop_reason != "max_epochs":
            raise RuntimeError(f"steepest stopped early: {res.stop_message}")
    elif lib == "PyTorch":
        import torch
        model = torch_mlp(sizes)
        copy_theta_to_torch(net, theta0, model)
        X = torch.from_numpy(as_float01(data.X) if X01 is None else X01)
        y = torch.from_numpy(data.y)
        Xt = torch.from_numpy(as_float01(data.X_test) if Xt01 is None else Xt01)
        opt = torch.optim.SGD(model.parameters(), lr=recipe.max_lr, momentum=recipe.momentum,
                              nesterov=recipe.nesterov)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=recipe.max_lr, total_steps=total, pct_start=recipe.pct_start, anneal_strategy="cos",
            cycle_momentum=False, div_factor=recipe.div_factor, final_div_factor=recipe.final_div_factor)
        lossf = torch.nn.CrossEntropyLoss()
        # steepest's per-epoch order (train.py: default_rng([seed, epoch]).permutation(n))
        perms_t = [torch.from_numpy(np.random.default_rng([recipe.seed, e]).permutation(n))
                   for e in range(recipe.epochs)]
        for e in range(recipe.epochs):
            model.train()
            t = time.perf_counter()
            Xs, ys = X.index_select(0, perms_t[e]), y.index_select(0, perms_t[e])
            for s in range(0, n, B):
                opt.zero_grad()
                lossf(model(Xs[s:s + B]), ys[s:s + B]).backward()
                opt.step()
                sched.step()
            times.append(time.perf_counter() - t)
            model.eval()
            with torch.no_grad():
                Z = model(Xt)
                accs.append(float((Z.argmax(1).numpy() == data.y_test).mean()))
                losses.append(float(lossf(Z, torch.from_numpy(data.y_test))))
    else:
        raise ValueError(lib)
    hit = next((e for e, a in enumerate(accs) if a >= recipe.target), None)
    return {"lib": lib, "acc": accs, "loss": losses, "times": times,
            "epochs": None if hit is None else hit + 1,
            "seconds": None if hit is None else float(sum(times[:hit + 1]))}
