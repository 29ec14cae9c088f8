"""Raw inputs made to hurt a pipeline's first step, for verify's hostile phase and the tests: small on the wire,
expensive to decode the naive way.

    strip_png(10000)      # a 10000x1 PNG of a few hundred bytes: resized shorter-side-first it is 2,560,000x256
    bomb_png(20000)       # a 20000x20000 PNG of about 50 KB: 400 million pixels, 1.2 GB as RGB
    long_text(1 << 20)    # a 1 MiB text
"""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour_type: int, row: bytes) -> bytes:
    """A PNG of `height` identical rows, compressed as it streams (never the whole image in memory)."""
    packer = zlib.compressobj(9)
    line = b"\0" + row  # filter type None
    data = b"".join(packer.compress(line) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def strip_png(width: int = 10000) -> bytes:
    """A width x 1 RGB strip: an extreme aspect ratio."""
    return _png(width, 1, 8, 2, bytes(range(256)) * (3 * width // 256) + b"\x80" * (3 * width % 256))


def bomb_png(side: int = 20000) -> bytes:
    """A side x side one-colour 1-bit PNG: tiny compressed, huge decoded."""
    return _png(side, side, 1, 0, b"\0" * ((side + 7) // 8))


def long_text(size: int = 1 << 20) -> bytes:
    """`size` bytes of words."""
    words = b"Triton serves what the manifest says. "
    return (words * (size // len(words) + 1))[:size]
