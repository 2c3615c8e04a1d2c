"""The ONE decode-and-resize path, shared by training and serving so they can never drift.

Bytes in, a float32 RGB array of shape (size, size, 3) scaled to [0, 1] out. The image's header
is read first (format, width, height), so a decompression bomb is refused before any pixel is
decoded. Large JPEGs use OpenCV's reduced-resolution decode, which is several times faster and
is applied identically when training and when serving.
"""

import io
import warnings

import cv2
import numpy as np
from PIL import Image

# Bump when anything below changes the tensor a file turns into: model versions record it, and
# a worker refuses a model trained with another preprocessing version.
PREPROCESSING_VERSION = 1

DEFAULT_MAX_PIXELS = 50_000_000

# What OpenCV can decode and what a header tells us; SVG and HEIC are named to explain a refusal.
SUPPORTED_FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM", "DIB"}

_REDUCED_JPEG_FLAGS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                       (2, cv2.IMREAD_REDUCED_COLOR_2))


class ImageError(ValueError):
    """A file that is not an image we can decode; the message says why, in a few words."""


def read_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the file's header, without decoding pixels."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        raise ImageError("SVG is a vector format, not a photo: not supported")
    if head.startswith((b"<!doctype html", b"<html")):
        raise ImageError("HTML document, not an image")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypheim", b"ftyphevc"):
        raise ImageError("HEIC/HEIF images are not supported: convert to JPEG or PNG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.format or "unknown", image.width, image.height
    except Image.DecompressionBombError:
        raise ImageError("image dimensions are too large (decompression bomb): refused") from None
    except (OSError, ValueError, SyntaxError):
        raise ImageError("not a recognised image format") from None


def _reduced_flag(image_format: str, width: int, height: int, image_size: int) -> int:
    """The largest reduced JPEG decode that still leaves at least the model's input size."""
    if image_format == "JPEG":
        for factor, flag in _REDUCED_JPEG_FLAGS:
            if min(width, height) >= factor * image_size:
                return flag
    return cv2.IMREAD_COLOR  # applies EXIF orientation; gray, palette, 16-bit become 8-bit colour


def decode_image(data: bytes, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to a (image_size, image_size, 3) float32 RGB array in [0, 1]."""
    image_format, width, height = read_header(data)
    if image_format not in SUPPORTED_FORMATS:
        raise ImageError(f"{image_format} images are not supported")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} pixels, over the limit of {max_pixels:,}: refused"
        )
    flag = _reduced_flag(image_format, width, height, image_size)
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if pixels is None or pixels.size == 0:
        raise ImageError(f"{image_format} data is corrupt or truncated: cannot decode")
    pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    pixels = cv2.resize(pixels, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return pixels.astype(np.float32) / 255.0


def looks_like_image(head: bytes) -> bool:
    """A cheap sniff of a file's first bytes: is it worth trying to decode?"""
    signatures = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"GIF8", b"II*\x00", b"MM\x00*")
    return head.startswith(signatures) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
