"""Images: image_to_mnist and load_image_folder on mutated PNG, JPEG, GIF, BMP, TIFF, PNM, WebP.

PNG chunks are mutated with their CRC recomputed, so the decoder gets past the checksum to
the interesting part; dimension fields are set to huge values to try decompression bombs.
Files in formats steepest does not read (EPS, PSD, ICO, ...) test that it refuses them.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np

import mutate
from targets.common import Case, check_dataset, expect

NAME = "image"
SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".pbm", ".ppm", ".bmp", ".gif", ".tif", ".tiff")


def _digit(rng, h, w, dark_on_light) -> np.ndarray:
    a = np.full((h, w), 255 if dark_on_light else 0, np.uint8)
    r0, r1 = sorted(rng.integers(0, h, 2))
    c = int(rng.integers(0, w))
    a[r0:r1 + 1, max(0, c - 1):c + 2] = 0 if dark_on_light else 255
    return a


def _save(im, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def seeds() -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for h, w in [(28, 28), (8, 5), (1, 1), (40, 17), (3, 60)]:
        grey = Image.fromarray(_digit(rng, h, w, dark_on_light=bool(rng.random() < 0.5)))
        rgb = grey.convert("RGB")
        rgba = grey.convert("RGBA")
        rgba.putalpha(Image.fromarray(_digit(rng, h, w, False)))
        out += [_save(grey, "PNG"), _save(rgb, "PNG"), _save(rgba, "PNG"), _save(grey.convert("1"), "PNG"),
                _save(grey.convert("P"), "PNG", transparency=0), _save(grey.convert("I;16"), "PNG"),
                _save(grey.convert("LA"), "PNG"), _save(rgb, "JPEG", quality=50),
                _save(grey, "JPEG", progressive=True), _save(rgb.convert("CMYK"), "JPEG"),
                _save(rgb, "BMP"), _save(grey, "GIF"), _save(grey, "TIFF"),
                _save(rgb, "TIFF", compression="tiff_lzw"), _save(grey, "TIFF", compression="packbits"),
                _save(grey, "PPM"), _save(rgb, "PPM"), _save(grey.convert("1"), "PPM"),
                _save(rgb, "WEBP"), _save(grey.convert("F"), "TIFF")]
        exif = Image.Exif()
        exif[0x0112] = int(rng.integers(1, 9))  # orientation
        out.append(_save(rgb, "JPEG", exif=exif))
        out.append(_save(grey, "GIF", save_all=True, append_images=[grey.rotate(90)]))
    out.append(b"P2\n3 2\n255\n0 255 0\n255 0 255\n")
    out.append(b"P1\n2 2\n0 1\n1 0\n")
    g = Image.fromarray(_digit(rng, 16, 16, True))
    for fmt in ("ICO", "PCX", "TGA", "SGI", "IM", "EPS", "DDS", "QOI"):
        try:
            out.append(_save(g.convert("RGB"), fmt))
        except Exception:  # noqa: BLE001 - a Pillow build without that writer
            pass
    return out


def _chunks(data: bytes):
    """PNG chunks as (type, body), or None if the input is no PNG."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    out, i = [], 8
    while i + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        out.append((kind, data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


def _png(chunks) -> bytes:
    body = b"".join(struct.pack(">I", len(c)) + k + c + struct.pack(">I", zlib.crc32(k + c))
                    for k, c in chunks)
    return b"\x89PNG\r\n\x1a\n" + body


HUGE = [0, 1, 2, 9000, 9500, 12000, 50000, 65535, 100000, 1 << 20, 0x7FFFFFFF, 0xFFFFFFFF]


def _png_mutate(r: random.Random, chunks) -> bytes:
    chunks = list(chunks)
    k = r.randrange(len(chunks))
    kind, body = chunks[k]
    what = r.random()
    if kind == b"IHDR" and len(body) == 13 and what < 0.6:
        w, h, depth, color = struct.unpack(">IIBB", body[:10])
        field = r.randrange(4)
        if field == 0:
            w = r.choice(HUGE)
        elif field == 1:
            h = r.choice(HUGE)
        elif field == 2:
            depth = r.choice([0, 1, 2, 4, 8, 16, 3, 255])
        else:
            color = r.choice([0, 2, 3, 4, 6, 1, 7])
        chunks[k] = (kind, struct.pack(">IIBB", w & 0xFFFFFFFF, h & 0xFFFFFFFF, depth, color)
                     + body[10:])
    elif kind == b"IDAT" and what < 0.5:
        try:
            chunks[k] = (kind, zlib.compress(mutate.havoc(r, zlib.decompress(body))))
        except zlib.error:
            chunks[k] = (kind, mutate.havoc(r, body))
    elif what < 0.7:
        chunks[k] = (kind, mutate.havoc(r, body))
    elif what < 0.8:
        chunks.insert(k, chunks[k])
    elif what < 0.9 and len(chunks) > 2:
        del chunks[k]
    else:
        chunks.insert(k, (r.choice([b"tRNS", b"PLTE", b"eXIf", b"iCCP", b"zTXt", b"acTL", b"fcTL"]),
                          mutate.random_bytes(r)))
    return _png(chunks)


def _dims_mutate(r: random.Random, data: bytes) -> bytes:
    """Set width/height fields of BMP, GIF and PNM headers to odd values."""
    b = bytearray(data)
    v = r.choice(HUGE)
    if data[:2] == b"BM" and len(b) >= 26:
        off = r.choice([18, 22])
        b[off:off + 4] = struct.pack("<i", min(v, 0x7FFFFFFF) * r.choice([1, -1]))
        return bytes(b)
    if data[:3] == b"GIF" and len(b) >= 10:
        off = r.choice([6, 8])
        b[off:off + 2] = struct.pack("<H", v & 0xFFFF)
        return bytes(b)
    if data[:1] == b"P" and data[1:2] in b"123456":
        parts = data.split(maxsplit=3)
        if len(parts) >= 3:
            parts[r.choice([1, 2])] = str(v).encode()
            return b"\n".join(parts)
    return mutate.havoc(r, data)


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    chunks = _chunks(data)
    what = r.random()
    if chunks and what < 0.5:
        return _png_mutate(r, chunks)
    if what < 0.65:
        return _dims_mutate(r, data)
    return mutate.havoc(r, data, pool)


def generate(r: random.Random, pool) -> Case:
    data = r.choice(pool)
    if r.random() < 0.97:
        data = mutate_bytes(r, data, pool)
    how = r.choices(["mnist", "folder", "folder_resize"], [85, 10, 5])[0]
    return Case(data, how=how, suffix=r.choice(SUFFIXES))


def prepare(case: Case, work: Path):
    from steepest.data import image_to_mnist, load_file, load_image_folder

    if case.how == "mnist":
        p = work / ("input" + case.suffix)
        p.write_bytes(case.data)
        return (lambda: image_to_mnist(p)), [p]
    root = work / "folder"
    for sub in ("a", "b"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for f in (root / sub).iterdir():
            f.unlink()
    p = root / "a" / ("input" + case.suffix)
    p.write_bytes(case.data)
    (root / "b" / "good.png").write_bytes(_GOOD)
    if case.how == "folder":
        return (lambda: load_file(root)), [p]
    return (lambda: load_image_folder(root, size=16, mnist_style=False)), [p]


def check(result, case: Case):
    if case.how == "mnist":
        expect(isinstance(result, np.ndarray) and result.shape == (784,) and result.dtype == np.uint8,
               f"image_to_mnist returned {getattr(result, 'shape', result)}")
    else:
        check_dataset(result, image_shape=(28, 28) if case.how == "folder" else (16, 16))
        expect(result.n_classes == 2 and result.class_names == ["a", "b"], "class folders")


def _good_png() -> bytes:
    from PIL import Image

    return _save(Image.fromarray(_digit(np.random.default_rng(5), 28, 28, True)), "PNG")


_GOOD = _good_png()
