"""Tests for edgekd.data: specs, loaders, validation and deterministic splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from edgekd.data import (
    Dataset,
    list_builtin_specs,
    load_dataset,
    parse_spec,
    read_idx,
    read_idx_header,
    write_idx,
)
from edgekd.data import specs as specs_mod
from edgekd.data.checks import split_indices
from edgekd.errors import ConfigError, DataError

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def _xy(n: int = 60, classes: int = 3, shape: tuple[int, ...] = (1, 4, 4), seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = np.arange(n) % classes
    return x, y


def _npz(tmp_path: Path, name: str = "d.npz", **arrays) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return f"npz:{path}"


def _rows(*arrays: np.ndarray) -> np.ndarray:
    """All samples as rows, sorted: compares data sets as multisets of samples."""
    flat = np.concatenate([a.reshape(len(a), -1) for a in arrays])
    return flat[np.lexsort(flat.T[::-1])]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


# ---------------------------------------------------------------------------------------- specs


def test_parse_spec():
    assert parse_spec("digits") == ("digits", "")
    assert parse_spec(" fashion-mnist ") == ("fashion-mnist", "")
    assert parse_spec("npz:/a/b:c.npz") == ("npz", "/a/b:c.npz")
    assert parse_spec("IDX:data") == ("idx", "data")
    assert list_builtin_specs() == ["basic-motions", "digits", "fashion-mnist"]


@pytest.mark.parametrize("spec", ["", "mnist", "cifar:foo", "digits:x", "npz:", "folder:  "])
def test_bad_spec(spec):
    with pytest.raises(DataError) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)
    if spec in ("", "mnist", "cifar:foo"):
        assert "npz:PATH" in str(e.value) and "fashion-mnist" in str(e.value)


def test_bare_npz_path_hints_scheme():
    with pytest.raises(DataError, match="npz:data.npz"):
        parse_spec("data.npz")


# ------------------------------------------------------------------------------ built-in sets


def test_digits_shapes_and_ranges(digits):
    d = digits
    assert d.kind == "image" and d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert d.class_names == tuple("0123456789")
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape[1:] == (1, 8, 8)
        assert len(x) == len(y) > 0 and 0.0 <= x.min() and x.max() <= 1.0
    assert len(d.x_test) == round(1797 * 0.2)
    assert len(d.x_val) == round((1797 - len(d.x_test)) * 0.1)
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 1797
    assert d.x_train.max() == 1.0


def test_digits_split_is_a_partition(digits):
    from sklearn.datasets import load_digits

    b = load_digits()
    source = (b.images.astype(np.float32) / 16.0)[:, None]
    d = digits
    assert np.array_equal(_rows(d.x_train, d.x_val, d.x_test), _rows(source))
    # the index split itself: disjoint, covering, stratified
    y = b.target
    test, rest = split_indices(y, 360, np.random.default_rng(0))
    assert len(np.intersect1d(test, rest)) == 0 and len(test) + len(rest) == len(y)
    assert np.array_equal(np.sort(np.concatenate([test, rest])), np.arange(len(y)))
    assert np.bincount(y[test]).min() >= 35  # about 36 per class


def test_split_determinism(digits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(digits, name), getattr(again, name))
    assert again.fingerprint() == digits.fingerprint()
    assert not np.array_equal(other.x_test, digits.x_test)
    assert other.fingerprint() != digits.fingerprint()


def test_limit_and_calibration(digits):
    d = load_dataset("digits", seed=0, limit=100)
    assert len(d.x_train) == 100 and len(d.x_val) <= 12 and len(d.x_test) <= 25
    assert np.bincount(d.y_train, minlength=10).min() >= 9  # stratified subset
    assert np.array_equal(load_dataset("digits", seed=0, limit=100).x_train, d.x_train)
    cal = d.calibration_samples(32, seed=3)
    assert cal.shape == (32, 1, 8, 8) and cal.dtype == np.float32
    assert np.array_equal(cal, d.calibration_samples(32, seed=3))
    assert not np.array_equal(cal, d.calibration_samples(32, seed=4))
    assert len(d.calibration_samples(10_000, seed=0)) == 100  # clamped to the training set
    with pytest.raises(ConfigError):
        d.calibration_samples(0, seed=0)


@pytest.mark.skipif(not FMNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist():
    assert read_idx_header(FMNIST / "train-images-idx3-ubyte.gz") == (np.dtype("u1"), (60000, 28, 28))
    assert read_idx_header(FMNIST / "train-labels-idx1-ubyte.gz")[1] == (60000,)
    assert read_idx_header(FMNIST / "t10k-images-idx3-ubyte.gz")[1] == (10000, 28, 28)
    assert read_idx_header(FMNIST / "t10k-labels-idx1-ubyte.gz")[1] == (10000,)
    d = load_dataset("fashion-mnist", limit=200, seed=0)
    assert d.input_shape == (1, 28, 28) and d.kind == "image" and d.num_classes == 10
    assert d.class_names[0] == "T-shirt/top" and d.class_names[-1] == "Ankle boot"
    assert len(d.x_train) == 200 and len(d.x_val) == 23
    assert len(d.x_test) == 10000  # the data set's own test split is kept whole under --limit
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert set(np.unique(d.y_train)) == set(range(10))


def test_fashion_mnist_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(specs_mod, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(DataError, match="dataset-fashion-mnist") as e:
        load_dataset("fashion-mnist")
    assert "\n" not in str(e.value) and "setup.sh" in str(e.value)
    (tmp_path / "partial").mkdir()
    monkeypatch.setattr(specs_mod, "FASHION_MNIST_DIR", tmp_path / "partial")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


# ------------------------------------------------------------------------------------------ npz


def test_npz_without_test_split(tmp_path):
    x, y = _xy(100)
    d = load_dataset(_npz(tmp_path, x=x.astype(np.float64), y=y.astype(np.int32)), seed=5)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (72, 8, 20)
    assert d.class_names == ("0", "1", "2") and d.num_classes == 3
    assert np.array_equal(_rows(d.x_train, d.x_val, d.x_test), _rows(x))
    assert np.bincount(d.y_test).min() >= 6  # stratified
    cal = d.calibration_samples(50, seed=0)
    assert len(np.unique(cal.reshape(50, -1), axis=0)) == 50  # distinct samples


def test_npz_with_test_split(tmp_path):
    x, y = _xy(50)
    xt, yt = _xy(12, seed=1)
    d = load_dataset(_npz(tmp_path, x=x, y=y, x_test=xt, y_test=yt, class_names=np.array(["a", "b", "c"])))
    assert np.array_equal(d.x_test, xt) and np.array_equal(d.y_test, yt)
    assert len(d.x_train) + len(d.x_val) == 50 and len(d.x_val) == 5
    assert d.class_names == ("a", "b", "c")


def test_npz_features_and_uint8(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 7)).astype(np.float16)
    d = load_dataset(_npz(tmp_path, x=x, y=np.arange(40) % 2))
    assert d.kind == "features" and d.input_shape == (7,) and d.x_train.dtype == np.float32
    img = np.full((30, 1, 2, 2), 255, dtype=np.uint8)
    d = load_dataset(_npz(tmp_path, "u8.npz", x=img, y=np.arange(30) % 2))
    assert d.x_train.max() == 1.0


def test_fingerprint_is_spec_independent(tmp_path):
    x, y = _xy(40)
    a = load_dataset(_npz(tmp_path, "a.npz", x=x, y=y))
    b = load_dataset(_npz(tmp_path, "b.npz", x=x, y=y))
    assert a.spec != b.spec and a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64 and a.fingerprint() is a.fingerprint()  # cached
    c = load_dataset(_npz(tmp_path, "c.npz", x=x, y=(y + 1) % 3))
    assert c.fingerprint() != a.fingerprint()


# ------------------------------------------------------------------------------------------ idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    for arr in (
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(6, dtype=np.int32).reshape(6) - 3,
        np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5),
        np.linspace(-1, 1, 4, dtype=np.float64),
    ):
        path = write_idx(tmp_path / f"a-{arr.dtype}{suffix}", arr)
        back = read_idx(path)
        assert back.dtype == arr.dtype.newbyteorder("=") and np.array_equal(back, arr)
        assert read_idx_header(path) == (back.dtype, arr.shape)


def _write_mnist_like(d: Path, n: int, n_test: int | None, gz: bool) -> tuple[np.ndarray, np.ndarray]:
    d.mkdir(exist_ok=True)
    sfx = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 6, 5), dtype=np.uint8)
    y = (np.arange(n) % 4).astype(np.uint8)
    write_idx(d / f"train-images-idx3-ubyte{sfx}", x)
    write_idx(d / f"train-labels-idx1-ubyte{sfx}", y)
    if n_test:
        write_idx(d / f"t10k-images-idx3-ubyte{sfx}", x[:n_test])
        write_idx(d / f"t10k-labels-idx1-ubyte{sfx}", y[:n_test])
    return x, y


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dir(tmp_path, gz):
    x, y = _write_mnist_like(tmp_path / "m", 80, 16, gz)
    d = load_dataset(f"idx:{tmp_path / 'm'}")
    assert d.input_shape == (1, 6, 5) and d.num_classes == 4 and len(d.x_test) == 16
    assert np.allclose(d.x_test[:, 0], x[:16] / 255.0) and d.x_test.dtype == np.float32
    assert np.array_equal(_rows(d.x_train, d.x_val), _rows((x / 255.0).astype(np.float32)[:, None]))
    _write_mnist_like(tmp_path / "n", 80, None, gz)
    assert len(load_dataset(f"idx:{tmp_path / 'n'}").x_test) == 16  # carved: 20% of 80


def test_idx_corrupt(tmp_path):
    x, _ = _write_mnist_like(tmp_path / "m", 20, None, gz=False)
    img = tmp_path / "m" / "train-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated.*needs 600 data bytes, found 593"):
        load_dataset(f"idx:{tmp_path / 'm'}")
    img.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="truncated inside its header"):
        read_idx(img)
    img.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(img)
    img.write_bytes(b"\x00\x00\x07\x01" + bytes(8))
    with pytest.raises(DataError, match="unknown dtype code 0x07"):
        read_idx(img)
    gz = tmp_path / "t.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(5))[:-12])
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(gz)
    (tmp_path / "m" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.*not found"):
        load_dataset(f"idx:{tmp_path / 'm'}")


# --------------------------------------------------------------------------------------- folder


def _png(path: Path, size=(5, 4), mode="L", value=128) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_folder_gray_and_rgb(tmp_path):
    for cls in ("cat", "ant"):
        for i in range(6):
            _png(tmp_path / "g" / cls / f"{i}.png", value=40 * i)
    (tmp_path / "g" / "ant" / ".DS_Store").write_bytes(b"junk")  # hidden files are skipped
    d = load_dataset(f"folder:{tmp_path / 'g'}", seed=1, cache_dir=tmp_path / "c")
    assert d.class_names == ("ant", "cat") and d.input_shape == (1, 4, 5)
    assert d.x_train.dtype == np.float32 and np.asarray(d.x_train).max() <= 200 / 255 + 1e-6
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 12
    _png(tmp_path / "g" / "cat" / "rgb.png", mode="RGB")
    assert load_dataset(f"folder:{tmp_path / 'g'}", cache_dir=tmp_path / "c").input_shape == (3, 4, 5)


def test_folder_errors(tmp_path):
    for cls in ("a", "b"):
        for i in range(3):
            _png(tmp_path / "f" / cls / f"{i}.png")
    _png(tmp_path / "f" / "b" / "big.png", size=(9, 9))
    with pytest.raises(DataError) as e:
        load_dataset(f"folder:{tmp_path / 'f'}", cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "big.png" in msg and "9x9" in msg and "5x4" in msg and "resize" in msg and "\n" not in msg
    (tmp_path / "f" / "b" / "big.png").unlink()
    (tmp_path / "f" / "a" / "notes.txt").write_text("hello")  # not an image by its suffix: ignored
    assert len(load_dataset(f"folder:{tmp_path / 'f'}", cache_dir=tmp_path / "c").y_test) >= 1
    (tmp_path / "f" / "a" / "notes.png").write_text("hello")  # an image by its name only: named
    with pytest.raises(DataError, match=r"notes\.png cannot be decoded.*--skip-bad-images"):
        load_dataset(f"folder:{tmp_path / 'f'}", cache_dir=tmp_path / "c")
    (tmp_path / "f" / "a" / "notes.png").unlink()
    (tmp_path / "f" / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(f"folder:{tmp_path / 'f'}", cache_dir=tmp_path / "c")
    (tmp_path / "f" / "empty").rmdir()
    _png(tmp_path / "f" / "stray.png")
    with pytest.raises(DataError, match="outside any class sub-folder"):
        load_dataset(f"folder:{tmp_path / 'f'}", cache_dir=tmp_path / "c")


# ---------------------------------------------------------------------------------- error cases


def _error_cases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (spec, text the single-line message must contain)."""
    x, y = _xy(30)
    (tmp_path / "text.npz").write_text("not a zip")
    np.savez(tmp_path / "good.npz", x=x, y=y)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:300])
    np.save(tmp_path / "arr.npy", x)
    (tmp_path / "arr.npz").write_bytes((tmp_path / "arr.npy").read_bytes())
    nan_x = x.copy()
    nan_x[0, 0, 0, :2] = np.nan
    nan_x[1, 0, 0, 0] = np.inf
    cases = {
        "missing npz": (f"npz:{tmp_path / 'nope.npz'}", "does not exist"),
        "missing idx dir": (f"idx:{tmp_path / 'nope'}", "does not exist"),
        "missing folder": (f"folder:{tmp_path / 'nope'}", "does not exist"),
        "npz is a dir": (f"npz:{tmp_path}", "is a directory"),
        "not npz": (f"npz:{tmp_path / 'text.npz'}", "cannot read"),
        "corrupt npz": (f"npz:{tmp_path / 'cut.npz'}", "cannot read"),
        "npy not npz": (f"npz:{tmp_path / 'arr.npz'}", "not an .npz archive"),
        "missing x": (_npz(tmp_path, "m1.npz", data=x, y=y), "no array 'x'"),
        "missing y": (_npz(tmp_path, "m2.npz", x=x, labels=y), "no array 'y'"),
        "ndim": (_npz(tmp_path, "m3.npz", x=x[:, :, :, :, None], y=y), "5-D"),
        "1-D x": (_npz(tmp_path, "m3b.npz", x=x[:, 0, 0, 0], y=y), "1-D"),
        "length": (_npz(tmp_path, "m4.npz", x=x, y=y[:-1]), "x has 30 samples but y has 29 labels"),
        "nan": (_npz(tmp_path, "m5.npz", x=nan_x, y=y), "2 NaN and 1 inf"),
        "negative": (_npz(tmp_path, "m6.npz", x=x, y=y - 1), "negative labels"),
        "non-integer": (_npz(tmp_path, "m7.npz", x=x, y=y + 0.5), "non-integer labels"),
        "string labels": (_npz(tmp_path, "m7b.npz", x=x, y=y.astype(str)), "not integer labels"),
        "one-hot": (_npz(tmp_path, "m7c.npz", x=x, y=np.eye(3)[y]), "argmax"),
        "one class": (_npz(tmp_path, "m8.npz", x=x, y=np.zeros(30, int)), "fewer than 2 classes"),
        "empty": (_npz(tmp_path, "m9.npz", x=x[:0], y=y[:0]), "empty"),
        "too few": (_npz(tmp_path, "m10.npz", x=x[:2], y=y[:2]), "too few"),
        "half test": (_npz(tmp_path, "m11.npz", x=x, y=y, x_test=x), "no y_test"),
        "test shape": (_npz(tmp_path, "m12.npz", x=x, y=y, x_test=x[:, :, :2], y_test=y), "x_test samples"),
        "names": (_npz(tmp_path, "m13.npz", x=x, y=y, class_names=np.array(["a", "b"])), "out of range"),
        "unknown": ("imagenet", "unknown data spec"),
    }
    return cases


def test_error_cases(tmp_path):
    cases = _error_cases(tmp_path)
    for name, (spec, needle) in cases.items():
        with pytest.raises(DataError) as e:
            load_dataset(spec)
        msg = str(e.value)
        assert "\n" not in msg, name
        assert needle in msg, f"{name}: {msg}"
        assert e.value.cause in msg and e.value.fix, name


@pytest.mark.parametrize(
    "kwargs", [{"seed": -1}, {"val_fraction": 1.0}, {"test_fraction": 0.0}, {"limit": 0}, {"limit": 2.5}]
)
def test_bad_options(kwargs):
    with pytest.raises(ConfigError):
        load_dataset("digits", **kwargs)


def test_no_heavy_imports():
    """No torch anywhere in edgekd.data; PIL and sklearn only inside functions."""
    import ast

    for path in Path(__file__).resolve().parents[2].joinpath("edgekd", "data").glob("*.py"):
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                roots = {n.split(".")[0] for n in names}
                assert "torch" not in roots, path
                if id(node) in top:
                    assert not roots & {"PIL", "sklearn"}, path


def test_npz_sequences_are_n_c_l(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 6, 50)).astype(np.float32)  # 6 sensor channels x 50 time steps
    y = np.arange(40) % 4
    ds = load_dataset(_npz(tmp_path, "seq.npz", x=x, y=y), seed=0)
    assert ds.kind == "sequence" and ds.input_shape == (6, 50) and ds.num_classes == 4


def test_limit_keeps_a_supplied_test_split_whole_and_shrinks_a_carved_one(tmp_path):
    """--limit shrinks only the splits edgekd derives: a test split the user supplies is every accuracy's
    denominator and stays whole (a 10,000-image test set cut to 500 made every figure +-1 point of noise)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((1000, 4), dtype=np.float32), np.arange(1000) % 4
    xt, yt = rng.random((600, 4), dtype=np.float32), np.arange(600) % 4
    supplied = tmp_path / "supplied.npz"
    np.savez(supplied, x=x, y=y, x_test=xt, y_test=yt)
    d = load_dataset(f"npz:{supplied}", seed=0, limit=100)
    assert len(d.x_train) == 100 and len(d.x_val) == 12
    assert len(d.x_test) == 600 and np.array_equal(d.x_test, xt) and np.array_equal(d.y_test, yt)
    carved = tmp_path / "carved.npz"
    np.savez(carved, x=x, y=y)
    c = load_dataset(f"npz:{carved}", seed=0, limit=100)
    assert len(c.x_train) == 100 and len(c.x_test) == 25  # ceil(100 * 0.2 / 0.8): derived, so it shrinks
    assert len(load_dataset(f"npz:{carved}", seed=0).x_test) == 200
