"""A minimal PNG writer (8-bit grayscale or RGB) so the tests can make images
without third-party Python modules."""
import struct
import zlib


def write_png(path, width, height, rows, channels=1):
    """rows: list of bytes objects, each width*channels long."""
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    color_type = 0 if channels == 1 else 2
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))
