"""Image classification data: MNIST, Fashion-MNIST, EMNIST (balanced), the EMNIST ByMerge-test substitute,
and scikit-learn's bundled 8x8 digits (the offline default). Images come flattened and normalised as in
the authors' code (load_data.py of github.com/biomedical-cybernetics/Cannistraci-Hebb-training):
``(x / 255 - mean) / std``.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import DataError, data_root, fetch, os_errors_as_data_errors, read_bytes, require
from .idx import read_idx

SPLIT_SEED = 0  # fixed seed of the 80/20 stratified splits (digits, the EMNIST substitute)


@dataclass
class VisionData:
    """``train_x (N, features)`` float32 normalised, ``train_y (N,)`` int64; same for test and, after
    ``split_validation``, for the validation split (else ``valid_x``/``valid_y`` are None)."""
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int
    valid_x: torch.Tensor | None = None
    valid_y: torch.Tensor | None = None

    @property
    def features(self) -> int:
        return self.train_x.shape[1]


def split_validation(data: VisionData, fraction: float, seed: int) -> VisionData:
    """``data`` with ``round(fraction · n_c)`` training images of every class ``c`` moved, drawn by a
    generator seeded with ``seed``, into a validation split (stratified, disjoint from the rest of the
    training set; training order otherwise kept). ``fraction`` 0 returns ``data`` unchanged. A class of the
    training set that would get no validation image is a ``DataError``, before anything is drawn."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return data
    labels, counts = torch.unique(data.train_y, return_counts=True)
    labels, counts = labels.tolist(), counts.tolist()
    empty = [(label, count) for label, count in zip(labels, counts) if round(fraction * count) == 0]
    if empty:
        listed = ", ".join(f"class {label} ({count} training image{'s' * (count != 1)})" for label, count in empty[:5])
        raise DataError(f"{data.name}: valid_fraction {fraction} leaves no validation image for {listed}"
                        f"{f' and {len(empty) - 5} more classes' if len(empty) > 5 else ''}; raise --valid_fraction "
                        f"(a class of n images gets round(valid_fraction · n)) or add images of that class")
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.zeros(data.train_y.shape[0], dtype=torch.bool)
    for label in labels:
        members = (data.train_y == label).nonzero().squeeze(1)
        count = round(fraction * members.numel())
        chosen[members[torch.randperm(members.numel(), generator=generator)[:count]]] = True
    return VisionData(data.name, data.train_x[~chosen], data.train_y[~chosen], data.test_x, data.test_y,
                      data.classes, data.train_x[chosen], data.train_y[chosen])


@dataclass(frozen=True)
class IdxSet:
    """An IDX data set: folder under the data root, file names, content sha256, official URL base."""
    folder: str
    files: tuple
    sha256: dict
    url: str
    mean: float
    std: float
    classes: int


_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "t10k-labels-idx1-ubyte.gz")
IDX_SETS = {
    "mnist": IdxSet("mnist", _IDX_FILES, {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        "https://ossci-datasets.s3.amazonaws.com/mnist/", 0.1307, 0.3081, 10),
    "fashion_mnist": IdxSet("fashion-mnist", _IDX_FILES, {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", 0.2860, 0.3530, 10),
    "emnist": IdxSet("emnist", tuple(f"emnist-balanced-{f.replace('t10k', 'test')}" for f in _IDX_FILES), {}, "",
                     0.1736, 0.3317, 47),
}
SUBSTITUTE = "emnist_bymerge_test_split"
EMNIST_ZIP = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"  # all EMNIST splits, ~560 MB
EMNIST_ZIP_MD5 = "58c8d27c78d21e728a6bc7b3cc06412e"  # the only published pin (torchvision's); NIST gives none
DATASETS = ("digits", *IDX_SETS, SUBSTITUTE)
IMAGE_TYPES = (0x08,)  # IDX type codes accepted: images are unsigned bytes (normalised from 0..255)
LABEL_TYPES = (0x08, 0x09, 0x0B, 0x0C)  # labels: any IDX integer type (then checked to lie in 0..classes-1)


def _normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return ((images.reshape(images.shape[0], -1).float() / 255.0) - mean) / std


def check_labels(labels: torch.Tensor, classes: int, where: Path) -> None:
    """``DataError`` naming ``where`` unless every label lies in ``0..classes-1``."""
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise DataError(f"{where}: label {low if low < 0 else high} is outside the {classes} classes "
                        f"(labels must be 0..{classes - 1})")


def _read_split(images_path: Path, labels_path: Path, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, H, W)`` uint8 and labels ``(N,)`` int64 of one split, checked: unsigned-byte images,
    integer labels in range, one label per image, at least one image."""
    images = read_idx(images_path, IMAGE_TYPES, ndim=3)
    labels = read_idx(labels_path, LABEL_TYPES, ndim=1)
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: holds no images")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for the {images.shape[0]} images of "
                        f"{images_path.name}")
    check_labels(labels, classes, labels_path)
    return images, labels.long()


def _load_idx(name: str, root: Path, download: bool, mirror: str | None) -> VisionData:
    spec = IDX_SETS[name]
    folder = root / spec.folder
    if download and name == "emnist":
        _fetch_emnist(folder, spec.files, mirror)
    elif download:
        for file in spec.files:
            if not (folder / file).exists():
                fetch((mirror or spec.url) + file, folder / file, spec.sha256[file])
    paths = require(folder, list(spec.files), name, "<the four IDX .gz files>")
    train_x, train_y = _read_split(paths[0], paths[1], spec.classes)
    test_x, test_y = _read_split(paths[2], paths[3], spec.classes)
    if train_x.shape[1:] != test_x.shape[1:]:
        size = lambda images: "x".join(map(str, images.shape[1:]))
        raise DataError(f"{paths[2]}: test images are {size(test_x)}, the training images of {paths[0].name} "
                        f"{size(train_x)}; both splits must have one image size")
    return VisionData(name, _normalise(train_x, spec.mean, spec.std), train_y,
                      _normalise(test_x, spec.mean, spec.std), test_y, spec.classes)


def _fetch_emnist(folder: Path, files: tuple, mirror: str | None) -> None:
    """Download NIST's EMNIST zip (md5-checked), extract the balanced split's IDX files, drop the zip."""
    import zipfile
    if all((folder / f).exists() for f in files):
        return
    archive = fetch((mirror or EMNIST_ZIP.rsplit("/", 1)[0] + "/") + "gzip.zip", folder / "gzip.zip",
                    EMNIST_ZIP_MD5, "md5")
    try:
        with zipfile.ZipFile(archive) as bundle:
            for file in files:
                member = f"gzip/{file}"
                with bundle.open(member) as source, open(folder / (file + ".part"), "wb") as target:
                    target.write(source.read())
                (folder / (file + ".part")).replace(folder / file)
    except (KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"emnist: {archive} is not the expected EMNIST archive ({error})") from error
    finally:
        archive.unlink(missing_ok=True)


def _stratified_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    indices = np.arange(labels.shape[0])
    return train_test_split(indices, test_size=0.2, random_state=SPLIT_SEED, stratify=labels)


def _load_substitute(root: Path) -> VisionData:
    """EMNIST ByMerge test split (116,323 images, 47 classes), split 80/20 stratified with a fixed seed:
    ``test.json`` holds ``files`` (webp mosaics of 28x28 tiles, row-major) and ``id`` (a label per tile)."""
    from PIL import Image
    folder = root / "emnist-bymerge-test"
    meta_path, = require(folder, ["test.json"], SUBSTITUTE, "test.json and its X_test_*.webp mosaics")
    try:
        meta = json.loads(read_bytes(meta_path))
        files, labels = list(meta["files"]), np.asarray(meta["id"])
    except (ValueError, KeyError, TypeError) as error:  # not JSON, not UTF-8, keys or types missing
        raise DataError(f"{meta_path}: not the substitute's metadata (a JSON object with 'files' and 'id'): "
                        f"{type(error).__name__}: {error}") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{meta_path}: 'id' must be a list of integer labels")
    tiles = []
    for path in require(folder, files, SUBSTITUTE):
        try:
            with Image.open(path) as image:
                mosaic = np.asarray(image.convert("L"))
        except OSError as error:  # not an image, truncated
            raise DataError(f"{path}: cannot decode the image ({error})") from None
        h, w = mosaic.shape
        if h % 28 or w % 28:
            raise DataError(f"{path}: a {h}x{w} mosaic is not made of 28x28 tiles")
        tiles.append(mosaic.reshape(h // 28, 28, w // 28, 28).swapaxes(1, 2).reshape(-1, 28, 28))
    images = np.concatenate(tiles)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{SUBSTITUTE}: {images.shape[0]} tiles but {labels.shape[0]} labels in {meta_path}")
    check_labels(torch.from_numpy(labels), 47, meta_path)
    try:
        train, test = _stratified_split(labels)
    except ValueError as error:  # a class with a single image, fewer test images than classes
        raise DataError(f"{meta_path}: its labels cannot be split 80/20 stratified ({error})") from None
    spec = IDX_SETS["emnist"]
    as_x = lambda idx: _normalise(torch.from_numpy(images[idx]), spec.mean, spec.std)
    return VisionData(SUBSTITUTE, as_x(train), torch.from_numpy(labels[train]).long(), as_x(test),
                      torch.from_numpy(labels[test]).long(), 47)


def _load_digits() -> VisionData:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16), 80/20 stratified split."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    train, test = _stratified_split(digits.target)
    x = torch.from_numpy(digits.data).float() / 16.0
    mean, std = float(x[train].mean()), float(x[train].std())
    y = torch.from_numpy(digits.target).long()
    return VisionData("digits", (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test], 10)


def image_shape(name: str) -> tuple[int, int] | None:
    """``(features, classes)`` of vision data set ``name`` (64 pixels for digits' 8x8 images, 784 for the
    28x28 sets), ``None`` for an unknown name."""
    classes = {"digits": 10, SUBSTITUTE: 47, **{n: spec.classes for n, spec in IDX_SETS.items()}}
    return (64 if name == "digits" else 784, classes[name]) if name in classes else None


def load_vision(name: str, data_dir=None, download: bool = False, mirror: str | None = None) -> VisionData:
    """Load a data set by name (``DATASETS``). ``data_dir``: see ``data_root``; ``download`` fetches
    missing IDX files from the official source (or ``mirror``) with a sha256 check. Checked before use:
    readable files, intact IDX/gzip, unsigned-byte images of one size in both splits, labels in
    ``0..classes-1``, one label per image; anything else is a one-line ``DataError`` naming the file."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    if name == "digits":
        return _load_digits()
    root = data_root(data_dir)
    with os_errors_as_data_errors(name):
        if name == SUBSTITUTE:
            return _load_substitute(root)
        return _load_idx(name, root, download, mirror)
