"""Pictures as data: one image file made an MNIST-style digit, and a folder of class folders of images.

Read with Pillow (lazily imported), only in the formats listed in :data:`IMAGE_FORMATS`, from regular
files of bounded size; a picture is shrunk before it is decoded in full when it is far larger than a
digit needs.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np

from steepest._files import read_regular
from steepest.data.datasets import Dataset
from steepest.errors import DataError, ShapeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".pbm", ".ppm", ".bmp", ".gif", ".tif", ".tiff")
# The Pillow decoders those extensions need (and WebP). Pillow would otherwise pick any of its
# ~40 decoders by content, whatever the name: EPS runs Ghostscript, a program of its own.
IMAGE_FORMATS = ("PNG", "JPEG", "PPM", "BMP", "GIF", "TIFF", "WEBP")
MAX_IMAGE_FILE_BYTES = 64 * 2**20  # a picture of a digit is kilobytes; more is not a digit
_MAX_SIDE = 2048  # longer side of a picture file, in pixels, kept before it is made a digit


def _open_image(source):
    """Open ``source`` (path or array) as a greyscale float array (h, w) in 0..255."""
    if isinstance(source, np.ndarray):
        if source.dtype.kind not in "biuf":
            raise DataError(f"image array must hold numbers, found dtype {source.dtype}")
        a = source.astype(np.float64)
        if not np.isfinite(a).all():
            at = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise DataError(f"image array: value at index {at} is not finite (NaN or inf)")
        if a.size and (a.min() < 0 or a.max() > 255):
            at = tuple(int(i) for i in np.argwhere((a < 0) | (a > 255))[0])
            raise DataError(f"image array: value {a[at]:g} at index {at} is outside the pixel range 0…255; "
                            "scale the picture to 0…255 first")
        if a.ndim == 3 and a.shape[2] in (3, 4):
            a = a[..., :3].mean(axis=2)  # alpha ignored for arrays; give grey if it matters
        if a.ndim != 2 or a.size == 0:
            raise ShapeError(f"image array must be (h, w) or (h, w, 3|4), found shape {source.shape}")
        if a.max() <= 1.0:  # float image in 0..1
            a = a * 255.0
        return a
    from PIL import Image, ImageOps, UnidentifiedImageError  # lazy

    path = Path(source)
    try:
        with warnings.catch_warnings():
            # Past Pillow's MAX_IMAGE_PIXELS it only warns, then decodes gigabytes: refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # From memory, not the file: a decoder that trusts a length field (Pillow's PNG
            # reader does) then reads at most the file's size instead of allocating the claim.
            data = read_regular(path, DataError, "an image file", max_bytes=MAX_IMAGE_FILE_BYTES)
            im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        with im:
            im.load()
            if max(im.size) > _MAX_SIDE:
                # It will become a digit a few dozen pixels wide: shrink it now, or a 100-byte
                # PNG claiming 60 x 1048576 pixels costs 1.5 GB in the steps below.
                im = _shrink(im, -(-max(im.size) // _MAX_SIDE))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # Drawings often have a transparent background: put them on white paper.
                im = im.convert("RGBA")
                paper = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(paper, im)
            return np.asarray(im.convert("L"), dtype=np.float64)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file; check the path") from None
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image too large to read safely ({e}); scale it down") from None
    except UnidentifiedImageError:
        raise DataError(
            f"{path}: not a readable image in a format steepest reads ({', '.join(IMAGE_FORMATS)})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, NotImplementedError,
            IndexError, TypeError, struct.error) as e:
        # The last three are what Pillow itself takes for a corrupt file when identifying one;
        # its decoders can still raise them from load() (an iCCP chunk after the data, say).
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def _shrink(im, factor: int):
    """``im`` reduced ``factor`` times (box filter), one tile at a time; EXIF orientation kept.

    ``Image.reduce`` on the whole picture would first copy all of it (RGBA to premultiplied,
    P to RGBA), as would ``exif_transpose``; at tens of millions of pixels such a copy is what
    exhausts memory.
    """
    from PIL import Image

    reducible = ("L", "LA", "PA", "RGB", "RGBA", "I", "F", "CMYK")
    mode = im.mode if im.mode in reducible else ("RGBA" if "transparency" in im.info else "L")
    w, h = im.size
    out = Image.new(mode, (-(-w // factor), -(-h // factor)))
    orientation = im.getexif().get(0x0112)  # EXIF orientation, for exif_transpose afterwards
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        out.info["exif"] = exif.tobytes()
    tile = factor * max(1, 1024 // factor)  # a multiple of factor: tiles shrink independently
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            part = im.crop((left, top, min(w, left + tile), min(h, top + tile)))
            part = part if part.mode == mode else part.convert(mode)
            out.paste(part.reduce(factor), (left // factor, top // factor))
    return out


def ink_box(size: int) -> int:
    """The longer side, in pixels, of a digit's ink in a ``size`` x ``size`` field, as its dataset was made.

    MNIST (28 x 28) scaled each digit into a 20 x 20 box, leaving a 4-pixel margin; the bundled
    8 x 8 digits (UCI optdigits) were size-normalised to fill their 32 x 32 bitmaps before 4 x 4
    blocks were counted, so their ink fills the field (MNIST's margin there leaves 6 of 8 pixels,
    and a model trained on the digits reads such pictures near chance). Other sizes keep MNIST's
    proportion.
    """
    return size if size == 8 else max(1, round(size * 20 / 28))


def image_to_mnist(source, size: int = 28) -> np.ndarray:
    """Turn a picture of a digit into an MNIST-style input: (size*size,) uint8, white on black.

    As MNIST was made: convert to grey; invert if the background is light; stretch contrast;
    crop to the bounding box of the ink; scale so the longer side is :func:`ink_box` pixels
    (20 for size 28, 8 for the 8 x 8 digits), keeping the aspect ratio; paste into a size x size
    field so that the centre of mass of the ink is at the centre.
    """
    from PIL import Image  # lazy

    where = source if not isinstance(source, np.ndarray) else "image array"
    a = _open_image(source)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 127:  # light background: MNIST digits are white ink on black
        a = 255.0 - a
    background = np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]))
    a = np.clip(a - background, 0.0, None)
    if a.max() < 16:
        raise DataError(f"{where}: no ink found, the image is blank or has almost no contrast")
    a *= 255.0 / a.max()
    rows, cols = np.nonzero(a > 0.2 * 255)
    a = a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    box = ink_box(size)
    h, w = a.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(
        Image.fromarray(a.astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS),
        dtype=np.float64,
    )
    total = small.sum()
    ys, xs = np.indices(small.shape)
    com_r, com_c = (ys * small).sum() / total, (xs * small).sum() / total
    centre = (size - 1) / 2.0  # pixel indices are pixel centres
    top = int(np.clip(round(centre - com_r), 0, size - new_h))
    left = int(np.clip(round(centre - com_c), 0, size - new_w))
    out = np.zeros((size, size), dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = np.clip(small, 0, 255).round().astype(np.uint8)
    return out.ravel()


def load_image_folder(root, size: int = 28, mnist_style: bool = True) -> Dataset:
    """A folder with one sub-folder of images per class; the sub-folder names are the classes.

    Each image becomes grey size x size uint8: with ``mnist_style`` through
    :func:`image_to_mnist` (inverted to white-on-black, cropped, centred), otherwise resized.
    """
    from PIL import Image  # lazy

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: expected one sub-folder of images per class, found none")
    images, labels = [], []
    for k, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir()
                       if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
        if not files:
            raise DataError(f"{folder}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        for f in files:
            if mnist_style:
                images.append(image_to_mnist(f, size=size))
            else:
                grey = Image.fromarray(_open_image(f).astype(np.uint8))
                images.append(np.asarray(grey.resize((size, size), Image.Resampling.LANCZOS)).ravel())
            labels.append(k)
    X = np.stack(images).astype(np.uint8)
    return Dataset(name=root.name, X_train=X, y_train=np.asarray(labels, dtype=np.int64),
                   X_test=None, y_test=None, input_scale=1.0 / 255.0, image_shape=(size, size),
                   n_classes=len(classes), source=str(root), class_names=[c.name for c in classes])
