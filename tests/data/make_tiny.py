"""Writes tests/data/mnist/*.gz: a tiny synthetic MNIST-format data set (8x8 images, 4 classes).

Each class is a fixed random 8x8 pattern; samples add pixel noise. 480 train / 120 test images.
Run from the repository root: python tests/data/make_tiny.py
"""
import gzip
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parent / "mnist"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + array.astype(np.uint8).tobytes())


def main() -> None:
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, size=(4, 8, 8))
    FOLDER.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 480), ("t10k", 120)):
        labels = np.arange(count) % 4
        images = np.clip(patterns[labels] + rng.normal(0, 60, size=(count, 8, 8)), 0, 255)
        write_idx(FOLDER / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(FOLDER / f"{split}-labels-idx1-ubyte.gz", labels)


if __name__ == "__main__":
    main()
