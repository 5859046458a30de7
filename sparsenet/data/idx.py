"""Reader for the IDX format of MNIST-style data sets (optionally gzip-compressed)."""
import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from .files import DataError, read_bytes

TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # IDX type code -> element type
TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
              0x0E: "float64"}


def _type_list(codes) -> str:
    return ", ".join(f"0x{code:02X} ({TYPE_NAMES[code]})" for code in sorted(codes))


def read_idx(path: str | Path, types=None, ndim: int | None = None) -> torch.Tensor:
    """The array stored in an IDX file: magic ``0x0000 <type> <ndim>``, big-endian dims, then data; a ``.gz``
    file is decompressed first. ``types`` (IDX type codes) and ``ndim``, when given, are what the caller
    accepts. Any damage (unreadable or corrupt file, bad magic, an unknown or unaccepted type, a header that
    does not match the payload) is a one-line ``DataError`` naming the file."""
    path = Path(path)
    raw = read_bytes(path)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # not gzip, a bad CRC, a cut or garbled stream
            raise DataError(f"{path}: corrupt gzip file ({str(error) or type(error).__name__}); replace it, or delete "
                            f"it and fetch it again with --download") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic {raw[:4].hex()}, expected 0000 then type and rank)")
    code, rank = raw[2], raw[3]
    if code not in TYPES:
        raise DataError(f"{path}: unknown IDX data type 0x{code:02X}; IDX knows {_type_list(TYPES)}")
    if types is not None and code not in types:
        raise DataError(f"{path}: holds IDX type 0x{code:02X} ({TYPE_NAMES[code]}); expected {_type_list(types)}")
    if rank == 0 or (ndim is not None and rank != ndim):
        raise DataError(f"{path}: the IDX header gives {rank} dimensions; expected {ndim or 'at least 1'}")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes, {header} needed for {rank} dimensions)")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    dtype = TYPES[code]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes of data), file holds {len(raw) - header}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")))
