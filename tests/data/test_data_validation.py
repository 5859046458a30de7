"""Bad data is refused at load, before any training, in one line naming the file and the problem: each defect
is a tiny data set generated in tmp_path (a table: defect -> message), through the library loader and,
for some rows, through ``python cli.py train``; good data loads to the very tensors its files hold."""
import gzip
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsenet.data import DataError, load_vision, split_validation
from sparsenet.data.vision import IDX_SETS
from tests.conftest import TINY_DATA

FILES = IDX_SETS["mnist"].files  # train images, train labels, test images, test labels
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    element = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return header + array.astype(element).tobytes()


def _mnist(root: Path, train=(40, 6, 6), test=(12, 6, 6), classes=4, image_code=0x08, label_code=0x08,
           labels=None, raw: dict | None = None) -> Path:
    """A tiny MNIST-format folder ``root/mnist``: uint8 images of the given shapes, labels cycling over
    ``classes`` (``labels``: the training labels instead); ``raw`` replaces a file's bytes as written."""
    rng = np.random.default_rng(0)
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = np.arange(train[0]) % classes if labels is None else np.asarray(labels)
    arrays = {FILES[0]: (rng.integers(0, 256, train), image_code), FILES[1]: (train_labels, label_code),
              FILES[2]: (rng.integers(0, 256, test), image_code), FILES[3]: (np.arange(test[0]) % classes, label_code)}
    for name, (array, code) in arrays.items():
        content = (raw or {}).get(name)
        (folder / name).write_bytes(content if content is not None else gzip.compress(_idx(array, code), mtime=0))
    return folder


def _garbled(data: bytes) -> bytes:
    """Deflate data with its middle overwritten; for the data below zlib cannot decode it (``zlib.error``)."""
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 16 + data[middle + 16:]


GOOD_TRAIN_IMAGES = gzip.compress(_idx(np.zeros((40, 6, 6), dtype=np.uint8)), mtime=0)
P = "{folder}/"  # the message names the file: {folder} is the data set's folder

CASES = {  # defect: (how the data set is made, the message's start)
    "label above the classes": (dict(labels=np.r_[np.arange(39) % 4, 10]),
                                P + FILES[1] + ": label 10 is outside the 10 classes \\(labels must be 0..9\\)$"),
    "negative label": (dict(labels=np.r_[np.arange(39) % 4, -1], label_code=0x09),
                       P + FILES[1] + ": label -1 is outside the 10 classes"),
    "train and test sizes differ": (dict(test=(12, 5, 6)),
                                    P + FILES[2] + ": test images are 5x6, the training images of " + FILES[0] +
                                    " 6x6; both splits must have one image size$"),
    "a class without a validation image": (dict(labels=np.r_[np.zeros(37, int), 1, 2, 3]),
                                           "mnist: valid_fraction 0.1 leaves no validation image for class 1 "
                                           "\\(1 training image\\), class 2 \\(1 training image\\), class 3"),
    "int8 images": (dict(image_code=0x09), P + FILES[0] + ": holds IDX type 0x09 \\(signed byte\\); expected 0x08 "
                                                          "\\(unsigned byte\\)$"),
    "int16 images": (dict(image_code=0x0B), P + FILES[0] + ": holds IDX type 0x0B \\(int16\\)"),
    "int32 images": (dict(image_code=0x0C), P + FILES[0] + ": holds IDX type 0x0C \\(int32\\)"),
    "float32 images": (dict(image_code=0x0D), P + FILES[0] + ": holds IDX type 0x0D \\(float32\\)"),
    "float64 images": (dict(image_code=0x0E), P + FILES[0] + ": holds IDX type 0x0E \\(float64\\)"),
    "float32 labels": (dict(label_code=0x0D), P + FILES[1] + ": holds IDX type 0x0D \\(float32\\); expected 0x08 "
                                                             "\\(unsigned byte\\), 0x09 \\(signed byte\\), 0x0B"),
    "float64 labels": (dict(label_code=0x0E), P + FILES[1] + ": holds IDX type 0x0E \\(float64\\)"),
    "images of rank 2": (dict(raw={FILES[0]: gzip.compress(_idx(np.zeros((40, 36), np.uint8)))}),
                         P + FILES[0] + ": the IDX header gives 2 dimensions; expected 3$"),
    "labels of rank 2": (dict(raw={FILES[1]: gzip.compress(_idx(np.zeros((40, 1), np.uint8)))}),
                         P + FILES[1] + ": the IDX header gives 2 dimensions; expected 1$"),
    "no images": (dict(train=(0, 6, 6), labels=[]), P + FILES[0] + ": holds no images$"),
    "fewer labels than images": (dict(labels=np.arange(30) % 4),
                                 P + FILES[1] + ": 30 labels for the 40 images of " + FILES[0] + "$"),
    "wrong magic": (dict(raw={FILES[0]: gzip.compress(b"\x08\x03\x00\x00" + GOOD_TRAIN_IMAGES[4:])}),
                    P + FILES[0] + ": not an IDX file \\(bad magic 08030000"),
    "header larger than payload": (dict(raw={FILES[2]: gzip.compress(_idx(np.zeros((12, 6, 6), np.uint8))[:-36])}),
                                   P + FILES[2] + ": header says \\[12, 6, 6\\] \\(432 bytes of data\\), file holds "
                                                  "396$"),
    "truncated gzip": (dict(raw={FILES[0]: GOOD_TRAIN_IMAGES[:-20]}), P + FILES[0] + ": corrupt gzip file \\("),
    "garbled gzip": (dict(raw={FILES[0]: _garbled(gzip.compress(bytes(range(200)) * 2))}),
                     P + FILES[0] + ": corrupt gzip file \\(Error -3 while decompressing"),
    "not gzip": (dict(raw={FILES[3]: b"<html>403 Forbidden</html>"}),
                 P + FILES[3] + ": corrupt gzip file \\(Not a gzipped file"),
    "empty file": (dict(raw={FILES[1]: b""}), P + FILES[1] + ": not an IDX file \\(bad magic , expected"),
}


def _load(root: Path):
    """What the MLP recipe does: load, then split off the validation images (default fraction 0.1)."""
    return split_validation(load_vision("mnist", root), 0.1, seed=0)


def test_the_generated_data_set_is_good(tmp_path):
    data = _load(_mnist(tmp_path).parent)
    assert data.train_x.shape == (36, 36) and data.test_x.shape == (12, 36)
    assert sorted(data.valid_y.tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("defect", list(CASES))
def test_bad_data_is_one_line_naming_the_file(tmp_path, defect):
    changes, message = CASES[defect]
    folder = _mnist(tmp_path, **changes)
    with pytest.raises(DataError, match="^" + message.format(folder=folder)) as error:
        _load(tmp_path)
    assert "\n" not in str(error.value)


def _folder_in_place_of_a_file(root: Path) -> None:
    (_mnist(root) / FILES[0]).unlink()
    (root / "mnist" / FILES[0]).mkdir()


@pytest.mark.parametrize("make,message", [
    (lambda root: root.write_text("a file"), "mnist: {root} is a file, not a folder; --data_dir must name"),
    (lambda root: (root.mkdir(), (root / "mnist").write_text("a file")), "mnist: {root}/mnist is a file, not a folder"),
    (_folder_in_place_of_a_file, "{root}/mnist/" + FILES[0] + ": cannot read \\(Is a directory\\)$"),
])
def test_a_data_dir_that_is_not_a_folder_of_files(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError, match="^" + message.format(root=root)):
        load_vision("mnist", root)


def test_permission_denied_names_the_path(tmp_path, monkeypatch):
    """Root reads everything, so the error the file system would give is injected where the path is tested."""
    root = tmp_path / "locked"
    root.mkdir()
    real_exists = Path.exists

    def exists(path):
        if path == root / "mnist":
            raise PermissionError(13, "Permission denied", str(path))
        return real_exists(path)
    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(DataError, match=f"^mnist: {root}/mnist: Permission denied$"):
        load_vision("mnist", root)


@pytest.mark.skipif(os.geteuid() == 0, reason="root is never denied")
def test_an_unreadable_data_dir(tmp_path):
    _mnist(tmp_path)
    (tmp_path / "mnist").chmod(0)
    try:
        with pytest.raises(DataError, match=f"{tmp_path}/mnist.*Permission denied"):
            load_vision("mnist", tmp_path)
    finally:
        (tmp_path / "mnist").chmod(0o755)


@pytest.mark.parametrize("defect", ["label above the classes", "garbled gzip", "int8 images",
                                    "a class without a validation image"])
def test_the_cli_prints_one_error_line(tmp_path, cli, defect):
    changes, message = CASES[defect]
    folder = _mnist(tmp_path / "data", **changes)
    result = cli("train", "--dataset", "mnist", "--data_dir", tmp_path / "data", "--epochs", 1, "--wandb", "off",
                 "--out_dir", tmp_path / "runs", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.match("^error: " + message.format(folder=folder), lines[0]), lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("checkpoint.pt"))


def _decode(path: Path) -> np.ndarray:
    """An IDX .gz decoded by hand with numpy, as an independent reference."""
    raw = gzip.decompress(path.read_bytes())
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


@pytest.mark.parametrize("root,name", [(TINY_DATA, "mnist"), (SHARED, "mnist"), (SHARED, "fashion_mnist")])
def test_good_data_loads_to_the_tensors_its_files_hold(root, name):
    spec = IDX_SETS[name]
    if not (root / spec.folder).exists():
        pytest.skip(f"{root / spec.folder} not present")
    data = load_vision(name, root)
    images, labels, test_images, test_labels = (_decode(root / spec.folder / file) for file in spec.files)
    flat = lambda x: torch.from_numpy(x.reshape(x.shape[0], -1).astype(np.float32))  # noqa: E731
    normalise = lambda x: (flat(x) / 255.0 - spec.mean) / spec.std  # noqa: E731
    assert torch.equal(data.train_x, normalise(images)) and torch.equal(data.test_x, normalise(test_images))
    assert torch.equal(data.train_y, torch.from_numpy(labels.astype(np.int64)))
    assert torch.equal(data.test_y, torch.from_numpy(test_labels.astype(np.int64)))


def _substitute(root: Path, ids=None, meta: str | None = None, mosaic: bytes | None = None, size=(28 * 16, 28 * 16)):
    """A tiny ``emnist-bymerge-test`` folder: one PNG mosaic of 28x28 tiles and its test.json."""
    from PIL import Image
    folder = root / "emnist-bymerge-test"
    folder.mkdir(parents=True)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[0], size[1]), dtype=np.uint8))
    image.save(folder / "X_test_0.png")
    if mosaic is not None:
        (folder / "X_test_0.png").write_bytes(mosaic)
    count = size[0] // 28 * (size[1] // 28)
    labels = (np.arange(count) % 47).tolist() if ids is None else ids
    meta = json.dumps({"files": ["X_test_0.png"], "id": labels}) if meta is None else meta
    (folder / "test.json").write_text(meta)
    return folder


SUBSTITUTE_CASES = {
    "not JSON": (dict(meta="{files: "), "{folder}/test.json: not the substitute's metadata \\(a JSON object with "
                                        "'files' and 'id'\\): JSONDecodeError"),
    "no labels": (dict(meta='{"files": ["X_test_0.png"]}'), "{folder}/test.json: not the substitute's metadata .*"
                                                             "KeyError"),
    "text labels": (dict(ids=["a"] * 256), "{folder}/test.json: 'id' must be a list of integer labels$"),
    "label 47": (dict(ids=[47] + [i % 47 for i in range(255)]), "{folder}/test.json: label 47 is outside the 47 "
                                                                 "classes \\(labels must be 0..46\\)$"),
    "mosaic not an image": (dict(mosaic=b"GIF89a garbage"), "{folder}/X_test_0.png: cannot decode the image"),
    "mosaic cut": (dict(size=(30, 28)), "{folder}/X_test_0.png: a 30x28 mosaic is not made of 28x28 tiles$"),
    "a class of one image": (dict(ids=[46] + [i % 46 for i in range(255)]),
                             "{folder}/test.json: its labels cannot be split 80/20 stratified \\(The least populated .*"
                             "only 1 member"),
    "fewer labels than tiles": (dict(ids=[0] * 255), "emnist_bymerge_test_split: 256 tiles but 255 labels in "
                                                     "{folder}/test.json$"),
}


def test_the_generated_substitute_is_good(tmp_path):
    data = load_vision("emnist_bymerge_test_split", _substitute(tmp_path).parent)
    assert data.train_x.shape[1] == 784 and data.train_x.shape[0] + data.test_x.shape[0] == 256


@pytest.mark.parametrize("defect", list(SUBSTITUTE_CASES))
def test_a_bad_substitute_is_one_line(tmp_path, defect):
    changes, message = SUBSTITUTE_CASES[defect]
    folder = _substitute(tmp_path, **changes)
    with pytest.raises(DataError, match="^" + message.format(folder=folder)):
        load_vision("emnist_bymerge_test_split", tmp_path)
