"""Data in: IDX files, named datasets (mnist, fashion-mnist, digits), downloads, users' files.

Everything here returns NumPy arrays checked at the boundary — X (n, d), y (n,) int64 —
wrapped in a :class:`Dataset`. The core (network, optim, train) never imports this package.

Environment variables
---------------------
STEEPEST_DATA     directory with one sub-directory per dataset (mnist/, fashion-mnist/)
STEEPEST_CACHE    where downloads go (default: the user cache, ~/.cache/steepest on Linux)
STEEPEST_MIRRORS  base URLs to download from instead of the built-in mirrors
"""

from steepest.data.datasets import (
    DATA_SUFFIXES,
    KNOWN_DATASETS,
    Dataset,
    describe_datasets,
    find_dataset,
    is_user_file,
    load_dataset,
    load_digits,
    load_mnist,
    looks_like_path,
    matches_record,
    trained_data,
)
# `fetch` stays a module name here (steepest.data.fetch.fetch): re-exporting the function
# would shadow the module and break `import steepest.data.fetch`.
from steepest.data.fetch import default_cache_dir
from steepest.data.idx import read_idx, read_idx_header, write_idx
from steepest.data.userdata import (
    image_to_mnist,
    load_csv,
    load_file,
    load_idx_pair,
    load_image_folder,
    load_npz,
    make_dataset,
)

__all__ = [
    "KNOWN_DATASETS",
    "Dataset",
    "default_cache_dir",
    "describe_datasets",
    "find_dataset",
    "image_to_mnist",
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_file",
    "load_idx_pair",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "make_dataset",
    "read_idx",
    "read_idx_header",
    "write_idx",
]
