"""Paths that are not regular files, given to every loader: nothing may block or read forever.

Every (loader, kind) pair: loaders read_idx, read_idx_header, load_file as .npz / .csv / .tsv /
an image folder holding the thing as a.png, image_to_mnist, load_model, read_npy and the
``--config`` reader; kinds a FIFO with no writer (open() would block forever), a directory,
/dev/zero and /dev/urandom behind a symlink (reads never end), /dev/null, a dangling symlink, a
symlink loop, a socket. The only correct outcome is a SteepestError (a FileNotFoundError-free,
one-line refusal), within the campaign's --timeout.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from targets.common import Case

NAME = "special"
LOADERS = ["read_idx", "read_idx_header", "npz", "csv", "tsv", "folder", "image", "model", "npy", "config"]
KINDS = ["fifo", "dir", "zero", "urandom", "null", "dangling", "loop", "socket"]
SUFFIX = {"npz": ".npz", "csv": ".csv", "tsv": ".tsv", "image": ".png", "model": ".safetensors",
          "npy": ".npy", "config": ".toml"}


def seeds() -> list[bytes]:
    return [f"{l} {k}".encode() for l in LOADERS for k in KINDS]


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    return r.choice(pool)


def generate(r: random.Random, pool) -> Case:
    loader, kind = r.choice(pool).decode().split()
    return Case(f"{loader} {kind}".encode(), how=loader, suffix=SUFFIX.get(loader, ""), options={"kind": kind})


def _make(p: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dir":
        p.mkdir()
    elif kind in ("zero", "urandom", "null"):
        p.symlink_to(f"/dev/{kind}")
    elif kind == "dangling":
        p.symlink_to(p.parent / "nowhere")
    elif kind == "loop":
        p.symlink_to(p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()


def prepare(case: Case, work: Path):
    import shutil
    from types import SimpleNamespace

    from steepest.commands._trainconfig import resolve
    from steepest.data import load_file
    from steepest.data.idx import read_idx, read_idx_header
    from steepest.data.npz import read_npy
    from steepest.data.userdata import image_to_mnist
    from steepest.io import load_model

    d = work / "special"
    if d.exists() or d.is_symlink():
        shutil.rmtree(d)
    d.mkdir()
    loader, kind = case.how, case.options["kind"]
    if loader == "folder":
        (d / "folder" / "cls").mkdir(parents=True)
        target = d / "folder" / "cls" / "a.png"
        _make(target, kind)
        return (lambda: load_file(d / "folder")), [target]
    p = d / f"thing{case.suffix}"
    _make(p, kind)
    calls = {"read_idx": lambda: read_idx(p), "read_idx_header": lambda: read_idx_header(p),
             "npz": lambda: load_file(p), "csv": lambda: load_file(p), "tsv": lambda: load_file(p),
             "image": lambda: image_to_mnist(p), "model": lambda: load_model(p), "npy": lambda: read_npy(p),
             "config": lambda: resolve(SimpleNamespace(config=str(p)))}
    return calls[loader], [p]


def check(result, case: Case):
    from targets.common import Invalid

    raise Invalid(f"{case.how} returned from {case.options['kind']} instead of refusing it")
