"""Read and write IDX files, the format of the MNIST and Fashion-MNIST downloads.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code
and the number of dimensions. Then come the dimension sizes as big-endian
uint32, then the values in C order, big-endian. Files may be gzip-compressed;
the reader detects gzip by its two magic bytes, whatever the file name.
"""

import gzip
import logging
import struct
import zlib
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Return the file's content, decompressed if it is gzip."""
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")

    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw

    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({err}); download the file again") from err


def read_idx(path: Path | str) -> np.ndarray:
    """Parse an IDX file (raw or gzip) into an array of native byte order.

    Raises FileNotFoundError for a missing file and ValueError for a bad magic
    number, an unknown type code, or a data size that differs from the header.
    """
    path = Path(path)
    content = _read_bytes(path)

    # Magic number: 0x00 0x00, type code, number of dimensions.
    if len(content) < 4:
        raise ValueError(f"{path}: {len(content)} bytes is too short for an IDX header (need at least 4)")
    zero0, zero1, type_code, ndim = content[:4]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{content[:4].hex()} (expected 0x0000 then type and ndim); "
            "is this an IDX file?"
        )
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02X} (known: {known})")

    # Dimension sizes follow the magic number as big-endian uint32.
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header, expected {header_size} bytes for {ndim} dimensions, "
            f"got {len(content)}"
        )
    shape = struct.unpack(f">{ndim}I", content[4:header_size])

    # The data must fill the declared shape exactly.
    dtype = IDX_DTYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) < expected:
        raise ValueError(
            f"{path}: truncated IDX file, expected {expected} bytes for shape {shape}, got {len(content)}; "
            "download the file again"
        )
    if len(content) > expected:
        raise ValueError(
            f"{path}: {len(content) - expected} bytes of trailing data after shape {shape} "
            f"(expected {expected} bytes, got {len(content)})"
        )

    array = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    log.debug("read %s: shape %s dtype %s", path, shape, dtype)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: Path | str, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an array as an IDX file; compress with gzip when the name ends in .gz (or when compress=True)."""
    path = Path(path)
    array = np.asarray(array)

    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"dtype {array.dtype} has no IDX type code; use one of {sorted(map(str, codes))}")

    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()

    if compress is None:
        compress = path.suffix == ".gz"
    # mtime=0 keeps the gzip bytes identical for identical arrays.
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
