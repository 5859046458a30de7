"""IDX reader on hand-made files: values and shapes, then every kind of damage gives a clear DataError."""
import gzip

import pytest
import torch

from sparsenet.data import DataError, read_idx


def _idx(dims, data: bytes, type_code=0x08) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + data


def test_reads_values_and_shape(tmp_path):
    path = tmp_path / "images.gz"
    with gzip.open(path, "wb") as f:
        f.write(_idx([2, 2, 3], bytes(range(12))))
    assert torch.equal(read_idx(path), torch.arange(12, dtype=torch.uint8).reshape(2, 2, 3))
    raw = tmp_path / "labels"
    raw.write_bytes(_idx([3], (1000).to_bytes(4, "big") * 3, type_code=0x0C))
    assert read_idx(raw).tolist() == [1000, 1000, 1000]


@pytest.mark.parametrize("content,message", [
    (b"\x00\x00\x08", "bad magic"),
    (b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic"),
    (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic"),
    (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "truncated header"),
    (_idx([10], bytes(7)), "header says \\[10\\] \\(10 bytes of data\\), file holds 7"),
    (_idx([2], bytes(5)), "file holds 5"),
])
def test_damaged_files(tmp_path, content, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_idx([100], bytes(100)))[:-12])
    with pytest.raises(DataError, match="cannot read"):
        read_idx(path)
