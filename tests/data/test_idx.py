"""IDX reader on hand-made files: values and shapes of every type code, then every kind of damage (a cut or
garbled gzip, bad magic, an unknown or refused type, a header that does not match its payload, a path that
cannot be read) gives a one-line DataError naming the file."""
import gzip
import zlib

import numpy as np
import pytest
import torch

from sparsenet.data import DataError, read_idx
from sparsenet.data.idx import TYPES

CODES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32, 0x0D: torch.float32,
         0x0E: torch.float64}


def _idx(dims, data: bytes, type_code=0x08, rank=None) -> bytes:
    return bytes([0, 0, type_code, len(dims) if rank is None else rank]) + b"".join(d.to_bytes(4, "big")
                                                                                   for d in dims) + data


def _payload(code: int, values: np.ndarray) -> bytes:
    return values.astype(TYPES[code]).tobytes()  # big-endian, as IDX stores it


def test_reads_values_and_shape(tmp_path):
    path = tmp_path / "images.gz"
    with gzip.open(path, "wb") as f:
        f.write(_idx([2, 2, 3], bytes(range(12))))
    assert torch.equal(read_idx(path), torch.arange(12, dtype=torch.uint8).reshape(2, 2, 3))
    raw = tmp_path / "labels"
    raw.write_bytes(_idx([3], (1000).to_bytes(4, "big") * 3, type_code=0x0C))
    assert read_idx(raw).tolist() == [1000, 1000, 1000]


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_type_code_reads_its_values(tmp_path, code):
    values = np.array([[-3, 0, 7], [100, -128, 127]]) if code != 0x08 else np.array([[0, 1, 2], [128, 254, 255]])
    if code in (0x0D, 0x0E):
        values = values + 0.25
    path = tmp_path / "array"
    path.write_bytes(_idx([2, 3], _payload(code, values), type_code=code))
    array = read_idx(path)
    assert array.dtype == CODES[code] and torch.equal(array, torch.as_tensor(values).to(CODES[code]))


@pytest.mark.parametrize("content,message", [
    (b"", "not an IDX file \\(bad magic , expected"),
    (b"\x00\x00\x08", "not an IDX file \\(bad magic 000008,"),
    (b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc", "not an IDX file \\(bad magic 12340801,"),
    (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "unknown IDX data type 0x07; IDX knows 0x08 \\(unsigned"),
    (b"\x00\x00\x0a\x01" + (3).to_bytes(4, "big") + b"abc", "unknown IDX data type 0x0A"),
    (b"\x00\x00\x0f\x01" + (3).to_bytes(4, "big") + b"abc", "unknown IDX data type 0x0F"),
    (_idx([], b"abc"), "the IDX header gives 0 dimensions; expected at least 1"),
    (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "truncated header \\(8 bytes, 12 needed for 2 dimensions\\)"),
    (_idx([10], bytes(7)), "header says \\[10\\] \\(10 bytes of data\\), file holds 7"),
    (_idx([2], bytes(5)), "header says \\[2\\] \\(2 bytes of data\\), file holds 5"),
    (_idx([2, 3], bytes(6 * 4 - 1), type_code=0x0C), "header says \\[2, 3\\] \\(24 bytes of data\\), file holds 23"),
    (_idx([4, 28, 28], bytes(4 * 28 * 20)), "header says \\[4, 28, 28\\] \\(3136 bytes of data\\), file holds 2240"),
])
def test_damaged_files(tmp_path, content, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"^{path}: {message}"):
        read_idx(path)


@pytest.mark.parametrize("code", sorted(CODES))
def test_accepted_types_and_rank(tmp_path, code):
    """The caller's ``types``: only the listed codes pass; the others are named with their element type."""
    path = tmp_path / "array"
    path.write_bytes(_idx([2], _payload(code, np.array([1, 2])), type_code=code))
    if code == 0x08:
        assert read_idx(path, types=(0x08,), ndim=1).tolist() == [1, 2]
    else:
        with pytest.raises(DataError, match=f"^{path}: holds IDX type 0x{code:02X} \\(.+\\); expected 0x08 "
                                            f"\\(unsigned byte\\)$"):
            read_idx(path, types=(0x08,))
    with pytest.raises(DataError, match=f"^{path}: the IDX header gives 1 dimensions; expected 3$"):
        read_idx(path, ndim=3)


def _garble(data: bytes) -> bytes:
    """Deflate data with its middle overwritten: zlib cannot decode it (raises ``zlib.error``)."""
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 16 + data[middle + 16:]


COMPRESSED = gzip.compress(_idx([400], bytes(range(200)) * 2), mtime=0)


@pytest.mark.parametrize("content,reason", [
    (COMPRESSED[:-12], "Compressed file ended before the end-of-stream marker"),  # cut short
    (COMPRESSED[:10], "Compressed file ended"),  # header only
    (_garble(COMPRESSED), "Error -3 while decompressing"),  # zlib.error before this reader caught it
    (COMPRESSED[:-8] + b"\0\0\0\0" + COMPRESSED[-4:], "CRC check failed"),  # bad checksum
    (_idx([3], b"abc"), "Not a gzipped file"),  # a plain IDX file named .gz
    (b"<html>not found</html>", "Not a gzipped file"),
])
def test_corrupt_gzip(tmp_path, content, reason):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"^{path}: corrupt gzip file \\(.*{reason}.*\\); replace it, or delete it "
                                        f"and fetch it again with --download$"):
        read_idx(path)
    with pytest.raises((zlib.error, EOFError, OSError)):  # what gzip itself raises on this content
        gzip.decompress(content)


def test_paths_that_cannot_be_read(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=f"^{tmp_path / 'absent.gz'}: cannot read \\(No such file or directory\\)$"):
        read_idx(tmp_path / "absent.gz")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match=f"^{tmp_path / 'folder'}: cannot read \\(Is a directory\\)$"):
        read_idx(tmp_path / "folder")
    locked = tmp_path / "locked"
    locked.write_bytes(_idx([1], b"a"))

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(type(locked), "read_bytes", denied)  # root reads any file, so chmod cannot show it
    with pytest.raises(DataError, match=f"^{locked}: cannot read \\(Permission denied\\)$"):
        read_idx(locked)
