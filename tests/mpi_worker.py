"""What each process of the library's MPI tests runs: ``mpiexec -n K python mpi_worker.py MODE OUT``.

``same``: full-batch GD (float64, float32) and SGD with momentum (float64, float32; an odd batch, so
that the ranks' shares are uneven) for 50 steps, with dropout too (float64, both kernels), and the ‖∇L‖ < ε rule stopping full-batch GD and SGD
(its full gradient measured every 5 steps) before then; rank 0 saves the θs to OUT (.npz), each rank
its step, stop reason and counters to OUT.rankR. Run with one process it gives the reference. ``diverge``: rank 1 alters its gradient after the allreduce, so θ differs after the
first epoch. ``fault``: rank 1 leaves at step 20 (os._exit, no MPI call). ``budget``: a time budget only rank 1 reaches; both must stop at the same step.
"""


def runs():
    """name → keyword arguments of train() (the data: scikit-learn's digits, 1,797 samples)."""
    gd, sgd = dict(optimizer="gd", lr=0.5, batch_size=None), dict(optimizer="momentum", lr=0.05, batch_size=101)
    # ε between ‖∇L‖ at neighbouring checks (one process: GD crosses 0.2 at step 27, SGD 0.25 at step 40),
    # far from ties that rounding could flip
    return {"gd64": dict(dtype="float64", **gd), "gd32": dict(dtype="float32", **gd),
            "sgd64": dict(dtype="float64", **sgd), "sgd32": dict(dtype="float32", **sgd),
            "gd_eps64": dict(dtype="float64", eps=0.2, **gd),
            "sgd_eps64": dict(dtype="float64", eps=0.25, grad_norm_every=5, **sgd),
            # dropout: each process takes its rows' share of the masks of the whole step (both kernels)
            "sgd_drop64": dict(dtype="float64", dropout=[0.2, 0.5], kernels="numpy", **sgd),
            "sgd_drop64_numba": dict(dtype="float64", dropout=[0.2, 0.5], kernels="numba", **sgd),
            "gd_drop64": dict(dtype="float64", dropout=[0.2, 0.5], **gd)}


def digits(dtype):
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(dtype), y.astype(np.int64)


def main(mode, out):
    import sys

    import numpy as np
    from mpi4py import MPI

    import steepest
    from steepest.errors import ParallelError

    world = MPI.COMM_WORLD
    comm = world if world.Get_size() > 1 else None
    thetas, steps = {}, {}
    for name, kw in runs().items() if mode == "same" else [("gd64", runs()["gd64"])]:
        kw = dict(kw)
        X, y = digits(kw["dtype"])
        net = steepest.MLP([64, 32, 10], activation="tanh", dtype=kw.pop("dtype"), dropout=kw.pop("dropout", None))
        extra = {}
        if mode == "diverge" and world.Get_rank() == 1:
            extra["transforms"] = [lambda grad: grad.g.__iadd__(1e-9)]
        if mode == "fault":  # rank 1 leaves at step 20 (each rank has a callback, as they must)
            import os

            me = world.Get_rank()
            extra["callback"] = lambda event, st: me == 1 and st.step == 20 and os._exit(0)
            extra["max_steps"] = 10 ** 6
        if mode == "budget":
            extra.update(max_steps=10 ** 6, time_budget=2.0 if world.Get_rank() == 1 else 10 ** 6)
        elif mode != "fault":
            extra["max_steps"] = 50
        try:
            r = steepest.train(net, net.init(0), X, y, comm=comm, seed=0, **kw, **extra)
        except ParallelError as e:
            if world.Get_rank() == 0:
                print(f"ParallelError: {e}", file=sys.stderr)
            sys.exit(2)
        thetas[name], steps[name] = r.theta, (r.state.step, r.stop_reason, r.state.samples, r.state.grad_evals)
        if mode == "budget":  # what each rank says of the stop (not the same words on both)
            with open(f"{out}.message{world.Get_rank()}", "w") as f:
                f.write(r.stop_message)
    with open(f"{out}.rank{world.Get_rank()}", "w") as f:  # each rank's counters (not stdout: lines interleave)
        f.write(repr(steps))
    if world.Get_rank() == 0:
        np.savez(out, **thetas)


if __name__ == "__main__":
    import sys

    main(sys.argv[1], sys.argv[2])
