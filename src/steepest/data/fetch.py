"""Download MNIST and Fashion-MNIST into a cache, verifying every file by SHA-256.

Each file is fetched from a list of mirrors in order. A download goes to a hidden temporary
file beside its destination, is hashed, and is renamed into place only when the hash is one
of the accepted ones; anything else (network error, HTTP error, wrong hash) is deleted and the
next mirror is tried. So the cache never holds a corrupt file under a final name.

Accepted hashes: the files the mirrors serve (the canonical upstream archives) and the
re-compressed copies that Debian's ``dataset-fashion-mnist`` package and the project's
reference data directory hold. Both decompress to the same IDX bytes.

Mirrors can be overridden by argument or by ``$STEEPEST_MIRRORS`` (base URLs separated by
commas or whitespace; ``{name}`` in a URL is replaced by the dataset name).

A mirror cannot hold a run or fill a disk: the body is kept as sent (no Content-Encoding is
decoded), cut off past :data:`MAX_BYTES`, and left for the next mirror when it arrives slower than
:data:`MIN_RATE` on average; a mirror that cannot be reached or is too slow is not asked again for
the other files. Messages show mirror URLs without their user name and password.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from steepest.errors import ConfigError, DataNotFoundError

__all__ = [
    "FILES",
    "MIRRORS",
    "SHA256",
    "default_cache_dir",
    "fetch",
    "mirrors_for",
    "missing_data_message",
]

#: The four files of an MNIST-format dataset, in the order train images, train labels,
#: test images, test labels.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

#: Accepted SHA-256 digests per file: (upstream archive as served by the mirrors,
#: re-compressed reference copy with identical content).
SHA256: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        ),
    },
}


def default_cache_dir(cache_dir=None) -> Path:
    """The cache root: ``cache_dir`` if given, else ``$STEEPEST_CACHE``, else the user cache.

    The user cache is ``pooch.os_cache("steepest")``: ``~/.cache/steepest`` on Linux,
    ``~/Library/Caches/steepest`` on macOS, ``%LOCALAPPDATA%\\steepest\\Cache`` on Windows.
    Each dataset lives in a sub-directory named after it.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("STEEPEST_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch  # lazy: keeps `import steepest` fast

    return Path(pooch.os_cache("steepest"))


def mirrors_for(name: str, mirrors=None) -> list[str]:
    """Mirror base URLs for dataset ``name``: the argument, else ``$STEEPEST_MIRRORS``, else built in."""
    if name not in MIRRORS:
        raise ConfigError(f"no download known for dataset {name!r}; known: {', '.join(MIRRORS)}")
    if mirrors is None:
        env = os.environ.get("STEEPEST_MIRRORS", "").replace(",", " ").split()
        mirrors = env or MIRRORS[name]
    elif isinstance(mirrors, str):
        mirrors = [mirrors]
    return [m.replace("{name}", name) for m in mirrors]


def missing_data_message(name: str, cache_dir, reason: str) -> str:
    """The one message that tells a library user every way to supply dataset ``name``."""
    files = ", ".join(FILES)
    where = Path(cache_dir) / name
    return (
        f"{reason}\n"
        f"Supply the {name} files ({files}) in one of these ways:\n"
        f"  load_dataset({name!r}, data_dir=DIR)   where DIR holds the four files or a {name}/ sub-directory of them\n"
        f"  STEEPEST_DATA=DIR                       where DIR/{name}/ holds the four files\n"
        f"  copy them into the cache                {where}/\n"
        f"or use load_dataset('digits'), which needs no download."
    )


def not_found(name: str, cache_dir, reason: str) -> DataNotFoundError:
    """The :class:`DataNotFoundError` for ``name``, carrying its parts for callers that word it their way."""
    return DataNotFoundError(missing_data_message(name, cache_dir, reason), dataset=name, reason=reason,
                             cache=str(Path(cache_dir) / name))


#: No accepted file is larger than Fashion-MNIST's training images (26.4 MB); a body past this bound is
#: not one of them, and is cut off before it fills the disk.
MAX_BYTES = 64 * 2**20
#: The slowest average rate, in bytes per second, accepted once a download has run for ``timeout`` seconds:
#: a server sending a byte every few seconds never trips a per-read timeout, and would hold the run forever.
#: A link of 10 kbit/s still passes (Fashion-MNIST's largest file then takes about 7 hours).
MIN_RATE = 1024


def without_password(url: str) -> str:
    """``url`` without a user name or password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # host[:port], IPv6 brackets kept


class _Unreachable(OSError):
    """The mirror did not answer, or too slowly (``short`` says which): not asked again for the other files."""

    def __init__(self, message: str, short: str):
        super().__init__(message)
        self.short = short


def _get(url: str, tmp: str, progress: bool, timeout: float) -> None:
    """Stream ``url``'s body, as sent (no Content-Encoding decoded), into ``tmp``; OSError if the server
    fails, sends more than MAX_BYTES or falls below MIN_RATE."""
    import time

    import requests  # pooch's own HTTP client
    import urllib3

    try:
        with requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}) as r:
            r.raise_for_status()
            length = r.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_BYTES:
                raise OSError(f"the server offers {int(length):,} bytes, more than any dataset file "
                              f"({MAX_BYTES // 2**20} MiB at most)")
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=int(length) if length.isdigit() else None, unit="B", unit_scale=True,
                           desc=url.rsplit("/", 1)[-1], leave=False)
            got, start = 0, time.monotonic()
            try:
                with open(tmp, "xb") as f:  # mode 0666 less the umask, as any file the user makes
                    while chunk := r.raw.read1(2**16, decode_content=False):  # as it arrives (urllib3 ≥ 2.2)
                        got += len(chunk)
                        if got > MAX_BYTES:
                            raise OSError(f"the server sent more than {MAX_BYTES // 2**20} MiB, more than any "
                                          "dataset file; stopped")
                        f.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                        elapsed = time.monotonic() - start
                        if elapsed > timeout and got / elapsed < MIN_RATE:
                            raise _Unreachable(f"too slow: {got:,} bytes in {elapsed:.0f} s (less than "
                                               f"{MIN_RATE:,} bytes/s)", "too slow")
            finally:
                if bar is not None:
                    bar.close()
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else "error"
        raise OSError(f"HTTP {status}") from None
    except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
        raise _Unreachable(f"no answer within {timeout:g} s", "no answer") from None
    except requests.ConnectionError as e:
        if e.args and isinstance(e.args[0], urllib3.exceptions.ProtocolError):  # it answered, but not in HTTP
            raise OSError("the server's answer is not valid HTTP, or it broke off") from None
        raise _Unreachable("cannot connect (no network, or the server is down)", "cannot connect") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
        raise OSError(f"the download broke off ({type(e).__name__})") from None


def _download(url: str, dest: Path, accepted: tuple[str, ...], progress: bool, timeout: float):
    """Download ``url`` to ``dest`` if its SHA-256 is accepted; else raise and leave no file."""
    import pooch  # lazy

    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("only http:// and https:// mirrors are supported")
    tmp = str(dest.parent / f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        _get(url, tmp, progress, timeout)
        digest = pooch.file_hash(tmp, alg="sha256")
        if digest not in accepted:
            raise ValueError(f"SHA-256 mismatch (got {digest[:12]}..., file corrupt or not the original)")
        os.replace(tmp, dest)  # atomic on one file system: the final name appears whole or not at all
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _remove_stale_parts(target: Path, fname: str, age: float = 3600.0) -> None:
    """Delete the partial downloads of ``fname`` that a killed process left (older than ``age`` seconds;
    a younger one may be another process's download in progress); where the cache cannot be written,
    nothing."""
    import time

    for part in target.glob(f".{fname}.*.part"):
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > age:
                part.unlink()


def _verified(path: Path, accepted: tuple[str, ...]) -> bool:
    import pooch  # lazy

    return path.is_file() and pooch.file_hash(str(path), alg="sha256") in accepted


def fetch(name: str, cache_dir=None, mirrors=None, progress: bool = False, timeout: float = 30.0) -> Path:
    """Make sure the four files of dataset ``name`` are in the cache; return their directory.

    Files already present with an accepted hash are kept; the others are downloaded, trying
    each mirror in turn until one delivers a file whose SHA-256 is accepted.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    cache_dir : path, optional
        Cache root (see :func:`default_cache_dir`); files go to ``cache_dir/name/``.
    mirrors : list of str, optional
        Base URLs tried in order; default ``$STEEPEST_MIRRORS`` or the built-in list.
    progress : bool
        Show a progress bar (tqdm) while downloading.
    timeout : float
        Seconds to wait for a server before trying the next mirror; after this many seconds a download
        averaging less than :data:`MIN_RATE` is given up too.

    Raises
    ------
    DataNotFoundError
        Every mirror failed for some file. The message lists each mirror's failure and the
        ways to supply the data by hand.
    """
    urls = mirrors_for(name, mirrors)
    root = default_cache_dir(cache_dir)
    target = root / name
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise not_found(name, root, f"cannot create the cache directory {target}: {e}") from None
    unreachable = {}  # mirror → why, for those that did not answer at all: not asked again for the next files
    for fname in FILES:
        accepted = SHA256[name][fname]
        dest = target / fname
        _remove_stale_parts(target, fname)
        if _verified(dest, accepted):
            continue
        if dest.is_dir() or (dest.exists() and not dest.is_file()):
            raise not_found(name, root, f"{dest} is not a file; remove it so that {fname} can be downloaded there")
        if not os.access(target, os.W_OK | os.X_OK):  # (a complete cache may be read-only)
            raise not_found(name, root, f"cannot write to the cache directory {target}; set STEEPEST_CACHE to a "
                                        "directory you can write to")
        failures = []
        for base in urls:
            url = base.rstrip("/") + "/" + fname
            if base in unreachable:
                failures.append(f"  {without_password(url)}: not tried ({unreachable[base]} for an earlier file)")
                continue
            try:
                _download(url, dest, accepted, progress, timeout)
                break
            except (OSError, ValueError) as e:
                failures.append(f"  {without_password(url)}: {e}")
                if isinstance(e, _Unreachable):
                    unreachable[base] = e.short
        else:
            reason = f"could not download {name} ({fname}) from any mirror:\n" + "\n".join(failures)
            raise not_found(name, root, reason) from None
    return target
