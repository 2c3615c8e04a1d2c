"""Image files made by the tests themselves (the shared real photos are never fixtures)."""

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from trainer.sample_data import draw_face


def solid_rgb(width: int, height: int, rgb=(255, 0, 0)) -> np.ndarray:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = rgb
    return pixels


def encode(pixels_rgb: np.ndarray, extension: str = ".png", **params) -> bytes:
    """Encode an RGB array with OpenCV (which wants BGR)."""
    ok, data = cv2.imencode(extension, cv2.cvtColor(pixels_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def pil_bytes(image: Image.Image, format: str, **params) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=format, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size but holds one tiny compressed row: a bomb."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def write_images(folder: Path, count: int, size: int = 64, prefix: str = "img") -> list[str]:
    """`count` small distinct JPEGs named in listing order; returns their URIs as listed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for index in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        (folder / f"{prefix}_{index:03d}.jpg").write_bytes(encode(pixels, ".jpg"))
    return [os.path.join(os.path.realpath(folder), f"{prefix}_{index:03d}.jpg")
            for index in range(count)]


def upload_faces(filesystem, prefix: str, per_class: int, labelled: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for mood in ("happy", "sad"):
        for index in range(per_class):
            ok, data = cv2.imencode(".jpg", draw_face(mood, 48, rng))
            folder = f"{prefix}/{mood}" if labelled else prefix
            filesystem.pipe_file(f"{folder}/{mood}_{index}.jpg", data.tobytes())
