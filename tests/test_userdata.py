"""Users' files: npz, CSV, IDX pairs, image folders, and one photo made to look like MNIST."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from steepest.data.idx import write_idx
from steepest.data.userdata import (
    image_to_mnist,
    load_csv,
    load_file,
    load_idx_pair,
    load_image_folder,
    load_npz,
)
from steepest.errors import ConfigError, DataError, ShapeError


# ---------------------------------------------------------------- npz

def test_npz_features_and_test_split(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "mine.npz"
    np.savez(p, X=rng.standard_normal((10, 3)), y=np.arange(10) % 3,
             X_test=rng.standard_normal((4, 3)), y_test=np.array([0, 1, 2, 3]))
    d = load_npz(p)
    assert d.name == "mine" and d.source == str(p)
    assert d.X_train.shape == (10, 3) and d.X_train.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.n_classes == 4  # the test split has label 3
    assert d.X_test.shape == (4, 3) and d.input_scale == 1.0 and d.image_shape is None


def test_npz_images_are_flattened_and_keep_uint8(tmp_path):
    p = tmp_path / "imgs.npz"
    np.savez(p, X=np.zeros((5, 8, 6), np.uint8), y=np.array([0, 1, 0, 1, 1]))
    d = load_file(p)
    assert d.X_train.shape == (5, 48) and d.X_train.dtype == np.uint8
    assert d.image_shape == (8, 6) and d.input_scale == pytest.approx(1 / 255)


def test_npz_string_labels_become_class_names(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, X=np.ones((4, 2)), y=np.array(["dog", "cat", "dog", "bird"]))
    d = load_npz(p)
    assert d.class_names == ["bird", "cat", "dog"]
    assert d.y_train.tolist() == [2, 1, 2, 0] and d.n_classes == 3


def test_npz_string_test_labels_use_the_training_names(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, X=np.ones((3, 2)), y=np.array(["b", "a", "c"]),
             X_test=np.ones((2, 2)), y_test=np.array(["c", "c"]))
    d = load_npz(p)
    assert d.y_test.tolist() == [2, 2] and d.class_names == ["a", "b", "c"]
    np.savez(p, X=np.ones((3, 2)), y=np.array(["b", "a", "c"]),
             X_test=np.ones((2, 2)), y_test=np.array(["c", "z"]))
    with pytest.raises(DataError, match="label 'z' at row 1 is not a training class"):
        load_npz(p)


@pytest.mark.parametrize("arrays, error, message", [
    (dict(X=np.ones((3, 2))), DataError, "missing y"),
    (dict(X=np.ones((3, 2, 2, 2)), y=np.zeros(3, int)), ShapeError, r"\(n, d\) features or \(n, h, w\)"),
    (dict(X=np.ones((3, 2)), y=np.zeros(4, int)), ShapeError, "3 samples in X but 4 labels"),
    (dict(X=np.ones((0, 2)), y=np.zeros(0, int)), DataError, "no data"),
    (dict(X=np.array([[1.0, 2, 3], [4, 5, np.nan]]), y=np.zeros(2, int)), DataError,
     "row 1, column 2 is not finite"),
    (dict(X=np.array([[1.0, np.inf]]), y=np.zeros(1, int)), DataError, "row 0, column 1 is not finite"),
    (dict(X=np.array([[1e300]]), y=np.zeros(1, int)), DataError, "too large for float32"),
    (dict(X=np.ones((3, 2)), y=np.array([0, -1, 1])), ShapeError, "label -1 at row 1 is negative"),
    (dict(X=np.ones((3, 2)), y=np.array([0, 1.5, 1])), DataError, "label 1.5 at row 1 is not an integer"),
    (dict(X=np.ones((3, 2)), y=np.zeros(3, int), X_test=np.ones((2, 2))), DataError, "both X_test and y_test"),
    (dict(X=np.ones((3, 2)), y=np.zeros(3, int), X_test=np.ones((2, 5)), y_test=np.zeros(2, int)),
     ShapeError, "test data has 5 features, training data 2"),
    (dict(X=np.ones((3, 2), np.uint8), y=np.zeros(3, int), X_test=np.ones((2, 2)), y_test=np.zeros(2, int)),
     DataError, "X is uint8 but X_test is float32"),
    (dict(X=np.array([["a", "b"]]), y=np.zeros(1, int)), DataError, "features must be numbers"),
], ids=["no-y", "4d", "n-mismatch", "empty", "nan", "inf", "overflow", "negative", "fraction",
        "half-test", "test-width", "test-dtype", "strings"])
def test_npz_bad_cases(tmp_path, arrays, error, message):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(error, match=message):
        load_npz(p)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, X=np.array([{"evil": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(DataError, match="without pickled objects"):
        load_npz(p)


def test_npz_that_is_not_a_zip(tmp_path):
    p = tmp_path / "fake.npz"
    p.write_bytes(b"this is not an npz file at all")
    with pytest.raises(DataError, match="fake.npz"):
        load_npz(p)


# ---------------------------------------------------------------- CSV

def test_csv_with_header_and_label_column_in_the_middle(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,label,b\n0.5,1,2\n1.5,0,3\n\n2.5,2,4\n")
    d = load_csv(p)
    np.testing.assert_allclose(d.X_train, [[0.5, 2], [1.5, 3], [2.5, 4]])
    assert d.y_train.tolist() == [1, 0, 2] and d.n_classes == 3 and d.X_train.dtype == np.float32


def test_csv_without_header_uses_first_column(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("3,0.1,0.2\n1,0.3,0.4\n")
    d = load_file(p)
    assert d.y_train.tolist() == [3, 1] and d.X_train.shape == (2, 2)


def test_csv_named_label_column_and_string_labels(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("x1,x2,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n")
    d = load_csv(p, label_column="species")
    assert d.class_names == ["setosa", "virginica"] and d.y_train.tolist() == [0, 1, 0]


def test_csv_with_quoted_numbers_takes_the_slow_path(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('label,x\n"1","2.5"\n"0","3.5"\n')
    d = load_csv(p)
    assert d.y_train.tolist() == [1, 0] and d.X_train[:, 0].tolist() == [2.5, 3.5]


def test_csv_tab_separated(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("label\tx\n1\t2\n0\t3\n")
    assert load_file(p).X_train.tolist() == [[2.0], [3.0]]


@pytest.mark.parametrize("text, message", [
    ("label,a,b\n1,2,3\n0,x7,4\n", "line 3, column 'a': 'x7' is not a number"),
    ("label,a,b\n1,2,3\n0,,4\n", "line 3, column 'a': '' is not a number"),
    ("label,a,b\n1,2,3\n0,4\n", "line 3 has 2 columns, expected 3"),
    ("label,a,b\n1,2,3\n0,4,nan\n", "line 3, column b is not finite"),
    ("label,a\n1,2\n0.5,4\n", "label 0.5 at line 3 is not an integer"),
    ("label,a\n1,2\n-1,4\n", "label -1 at line 3 is negative"),
    ("label,a\n1,2\n\n\n0,inf\n", "line 5, column a is not finite"),
    ("label,a\n1,2\n,4\n", "line 3: empty label"),
    ("", "empty file"),
    ("\n\n", "empty file"),
    ("label,a,b\n", "no rows of data after the header"),
    ("1\n2\n", "needs a label column and at least one feature column"),
], ids=["text", "empty-cell", "ragged", "nan", "fraction", "negative", "blank-lines-counted",
        "no-label", "empty", "blank",
        "header-only", "one-column"])
def test_csv_bad_cases(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=message):
        load_csv(p)


def test_csv_unknown_label_column(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="no column named 'label'.*a, b"):
        load_csv(p, label_column="label")
    with pytest.raises(ConfigError, match="out of range"):
        load_csv(p, label_column=5)


# ---------------------------------------------------------------- IDX pair

def test_idx_pair(tmp_path):
    X = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    images = write_idx(tmp_path / "imgs.idx3", X, gzip=True)
    labels = write_idx(tmp_path / "labs.idx1", np.arange(7, dtype=np.uint8) % 4)
    d = load_file(images, labels=labels)
    assert d.X_train.shape == (7, 784) and d.image_shape == (28, 28) and d.n_classes == 4
    np.testing.assert_array_equal(d.X_train[3], X[3].ravel())


def test_idx_pair_count_mismatch(tmp_path):
    images = write_idx(tmp_path / "i", np.zeros((7, 4, 4), np.uint8))
    labels = write_idx(tmp_path / "l", np.zeros(6, np.uint8))
    with pytest.raises(ShapeError, match="holds 7 samples but .* holds 6 labels"):
        load_idx_pair(images, labels)


# ---------------------------------------------------------------- images

def draw_one(path, size=(60, 100), offset=(-15, 0), background=255, ink=0, mode="L"):
    """A '1': a vertical bar with a small flag, drawn off centre on a light background."""
    w, h = size
    im = Image.new(mode, size, background)
    d = ImageDraw.Draw(im)
    cx, cy = w // 2 + offset[0], h // 2 + offset[1]
    d.rectangle([cx - 3, cy - 35, cx + 3, cy + 35], fill=ink)
    d.line([cx - 10, cy - 25, cx, cy - 35], fill=ink, width=4)
    im.save(path)
    return path


def ink_centre(a):
    img = a.reshape(28, 28).astype(float)
    ys, xs = np.indices(img.shape)
    return (ys * img).sum() / img.sum(), (xs * img).sum() / img.sum()


def test_image_to_mnist_centres_a_drawn_one(tmp_path):
    a = image_to_mnist(draw_one(tmp_path / "one.png"))
    assert a.shape == (784,) and a.dtype == np.uint8
    r, c = ink_centre(a)
    assert abs(r - 13.5) < 1.0 and abs(c - 13.5) < 1.0
    img = a.reshape(28, 28)
    assert img.max() >= 250 and img[0].max() == 0 and img[:, 0].max() == 0  # white ink, black border
    rows = np.nonzero(img.max(axis=1) > 50)[0]
    assert 18 <= rows.max() - rows.min() + 1 <= 21  # longer side scaled to 20 px


def test_image_to_mnist_dark_background_is_not_inverted(tmp_path):
    a = image_to_mnist(draw_one(tmp_path / "w.png", background=0, ink=255, offset=(20, 10)))
    r, c = ink_centre(a)
    assert abs(r - 13.5) < 1.0 and abs(c - 13.5) < 1.0 and a.reshape(28, 28)[0].max() == 0


def test_image_to_mnist_transparent_drawing(tmp_path):
    p = tmp_path / "t.png"
    im = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse([10, 10, 40, 40], outline=(0, 0, 0, 255), width=4)
    im.save(p)
    img = image_to_mnist(p).reshape(28, 28)
    assert img[14, 14] == 0 and img.max() >= 250  # a ring: ink around, hole in the middle


def test_image_to_mnist_accepts_arrays_and_other_sizes():
    a = np.ones((40, 40))
    a[5:35, 18:22] = 0.0  # float image in 0..1, dark bar on white
    out = image_to_mnist(a, size=16)
    assert out.shape == (256,) and out.max() > 200


def test_an_enlarged_8x8_digit_comes_back_framed_as_the_digits_were():
    """The digits' ink fills its 8 x 8 field: MNIST's 20/28 margin (6 of 8 pixels) left a
    picture of a digits image correlated ~0.6 with the row it was drawn from; framed as the
    digits were, ~0.9."""
    from steepest.data import load_digits

    ds = load_digits()
    corr = []
    for row in ds.X_test[:50]:
        big = Image.fromarray((255 - row.reshape(8, 8) * 15).astype(np.uint8)).resize((80, 80))
        back = image_to_mnist(np.asarray(big, dtype=np.float64), size=8).astype(np.float64)
        corr.append(np.corrcoef(back, row.astype(np.float64))[0, 1])
    assert np.mean(corr) > 0.85, np.mean(corr)


@pytest.mark.parametrize("content, message", [
    (b"not an image at all", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "not a readable image"),
], ids=["garbage", "bad-png"])
def test_unreadable_images(tmp_path, content, message):
    p = tmp_path / "x.png"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message):
        image_to_mnist(p)


def test_truncated_png(tmp_path):
    p = draw_one(tmp_path / "one.png")
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(DataError, match="one.png"):
        image_to_mnist(p)


def test_blank_image_and_missing_file(tmp_path):
    p = tmp_path / "blank.png"
    Image.new("L", (30, 30), 255).save(p)
    with pytest.raises(DataError, match="no ink"):
        image_to_mnist(p)
    with pytest.raises(DataError, match="no such image"):
        image_to_mnist(tmp_path / "missing.png")


def test_image_folder(tmp_path):
    for cls, offsets in {"one": [(-10, 0), (5, 5)], "bar": [(0, 0)]}.items():
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i, off in enumerate(offsets):
            draw_one(tmp_path / "imgs" / cls / f"{i}.png", offset=off)
    (tmp_path / "imgs" / "one" / "notes.txt").write_text("ignored")
    d = load_file(tmp_path / "imgs")
    assert d.class_names == ["bar", "one"] and d.y_train.tolist() == [0, 1, 1]
    assert d.X_train.shape == (3, 784) and d.X_train.dtype == np.uint8
    assert d.image_shape == (28, 28) and d.n_classes == 2
    plain = load_image_folder(tmp_path / "imgs", size=10, mnist_style=False)
    assert plain.X_train.shape == (3, 100)


def test_image_folder_bad_cases(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    with pytest.raises(DataError, match="one sub-folder of images per class"):
        load_image_folder(root)
    (root / "a").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(root)
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match="broken.jpg"):
        load_image_folder(root)


def test_load_file_unknown_kind(tmp_path):
    p = tmp_path / "data.xlsx"
    p.write_bytes(b"PK")
    with pytest.raises(DataError, match="unknown kind of data file"):
        load_file(p)
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "nope.csv")


def test_image_arrays_outside_the_pixel_range_are_refused():
    """Found by hypothesis: a value near the float64 maximum overflowed the contrast stretch."""
    from steepest.data import image_to_mnist
    from steepest.errors import DataError

    with pytest.raises(DataError, match="outside the pixel range"):
        image_to_mnist(np.array([[8.98846567e307, 0.0], [0.0, 0.0]]))
    with pytest.raises(DataError, match="outside the pixel range"):
        image_to_mnist(-np.ones((4, 4)))


@pytest.mark.parametrize("label", [1e300, np.uint64(2**63), 2**62])
def test_huge_labels_are_refused_before_they_wrap_or_size_the_network(label, tmp_path):
    from steepest.data import load_npz
    from steepest.errors import DataError

    y = np.array([0, 1, label], dtype=np.asarray(label).dtype)
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2), np.float32), y=y)
    with pytest.raises(DataError, match="too large"):
        load_npz(tmp_path / "d.npz")


@pytest.mark.parametrize("cell", ["1_000", "١٢", "１２"])
def test_csv_features_are_numbers_as_the_labels_are(tmp_path, cell):
    """np.loadtxt read '1_000' as 1000 and Arabic-Indic or full-width digits as numbers, in the feature
    columns only (labels were already checked): the exact parse now looks at every cell when the file
    holds such characters."""
    p = tmp_path / "d.csv"
    p.write_text(f"label,a,b\n0,1,2\n1,{cell},3\n0,4,5\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"line 3, column 'a': '{cell}' is not a number"):
        load_csv(p)
    p.write_bytes(f"label,a,b\r0,1,2\r1,{cell},3\r0,4,5\r".encode())  # lines ended by CR alone
    with pytest.raises(DataError, match=f"line 3, column 'a': '{cell}' is not a number"):
        load_csv(p)
    p.write_text("label,pixel_a,b\n0,1,2\n1,1e3,3\nnaïve,4,5\n", encoding="utf-8")  # '_', non-ASCII elsewhere
    assert load_csv(p).X_train[1].tolist() == [1000.0, 3.0]


def test_csv_rows_past_a_long_cell_are_still_checked_for_extra_columns(tmp_path):
    """With a cell over the csv module's 128 KB limit, the column check was skipped, and a row with an
    extra column was read with that column silently dropped."""
    p = tmp_path / "d.csv"
    p.write_text("label,a\n0," + "1" * 200_000 + "\n1,2,99\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3 has 3 columns, expected 2"):
        load_csv(p)
