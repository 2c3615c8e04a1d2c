"""The ONE decode-and-resize path, shared by training and serving so they can never drift.

Bytes in, a uint8 RGB array of shape (size, size, 3) out (`decode_pixels`). Since preprocessing
version 2 the model scales its input itself (its first layer: `Rescaling`, or a pretrained
backbone's own normalisation), so the saved model carries its preprocessing: training feeds it
these pixels as float32 (`decode_image`), the worker hands uint8 to its inference engine, which
casts inside the graph (a 256 px image is 196 KB instead of 786 KB on its way there). The image's
header is read first (format, width, height), so a decompression bomb is refused before any
pixel is decoded. Large JPEGs use OpenCV's reduced-resolution decode, which is several times
faster and is applied identically when training and when serving.
"""

import io
import struct
import warnings

import cv2
import numpy as np
from PIL import Image

from db.errors import InvalidInput
from db.settings import DEFAULT_MAX_IMAGE_PIXELS
from trainer.formats import PREPROCESSING_VERSION, SUPPORTED_FORMATS

DEFAULT_MAX_PIXELS = DEFAULT_MAX_IMAGE_PIXELS  # HAPPYSAD_MAX_IMAGE_PIXELS when not set

# The reduction bits of OpenCV's reduced decodes (the _GRAYSCALE_ names are the bare bits),
# to be combined with IMREAD_COLOR_RGB.
_JPEG_REDUCTIONS = ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                    (2, cv2.IMREAD_REDUCED_GRAYSCALE_2))


class ImageError(InvalidInput):
    """A file that is not an image we can decode; the message says why, in a few words."""


# Start-of-frame markers, which carry a JPEG's size: every SOFn but DHT, JPG and DAC.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame segment, walking the segments before it;
    None when that walk fails, and Pillow decides. Kept because it is an order of magnitude
    faster than Pillow's lazy Image.open(...).size (benchmarks/kept_code.py)."""
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte before the marker
            position += 1
        elif marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack_from(">HH", data, position + 5)
            return (width, height) if width and height else None
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
        else:
            position += 2 + struct.unpack_from(">H", data, position + 2)[0]
    return None


def read_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the file's header, without decoding pixels."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    if data.startswith(b"\xff\xd8\xff") and (size := jpeg_size(data)):
        return "JPEG", *size
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


def _decode_flags(image_format: str, width: int, height: int, image_size: int) -> int:
    """8-bit RGB straight from the decoder (libjpeg makes RGB natively, so no BGR copy is
    swapped), with EXIF orientation applied and gray, palette or 16-bit images made 8-bit
    colour; for a JPEG, the largest reduced decode that still leaves the model's input size."""
    if image_format == "JPEG":
        for factor, reduction in _JPEG_REDUCTIONS:
            if min(width, height) >= factor * image_size:
                return reduction | cv2.IMREAD_COLOR_RGB
    return cv2.IMREAD_COLOR_RGB


def decode_image(data: bytes, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to the model's input: (image_size, image_size, 3) float32 RGB in
    [0, 255]."""
    return model_input(decode_pixels(data, image_size, max_pixels))


# Version 1's scaling, which its models need from outside. Multiplied, not divided:
# TensorFlow's graph optimiser turns x / 255 into x * (1 / 255), so both sides compute this form.
UNIT_SCALE = np.float32(1 / 255)
# preprocessing version -> the factor the pixels are multiplied by before the model sees them.
INPUT_SCALES = {1: UNIT_SCALE, 2: np.float32(1.0)}


def input_scale(preprocessing_version: int) -> np.float32:
    """The factor a model of that preprocessing version needs its pixels multiplied by."""
    if preprocessing_version not in INPUT_SCALES:
        raise ValueError(f"preprocessing version {preprocessing_version} is unknown to this "
                         f"code (it knows {', '.join(map(str, INPUT_SCALES))}): retrain the model")
    return INPUT_SCALES[preprocessing_version]


def model_input(pixels: np.ndarray, preprocessing_version: int = PREPROCESSING_VERSION) -> np.ndarray:
    """uint8 pixels as a model of that preprocessing version takes them (float32; worker.engine
    does the same cast and multiplication in its graph)."""
    scale = input_scale(preprocessing_version)
    floats = pixels.astype(np.float32)
    return floats if scale == 1 else floats * scale


def decode_pixels(data: bytes, image_size: int,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to a (image_size, image_size, 3) uint8 RGB array."""
    image_format, width, height = read_header(data)
    if image_format not in SUPPORTED_FORMATS:
        raise ImageError(f"{image_format} images are not supported")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} pixels, over the limit of {max_pixels:,}: refused"
        )
    flags = _decode_flags(image_format, width, height, image_size)
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if pixels is None or pixels.size == 0:
        raise ImageError(f"{image_format} data is corrupt or truncated: cannot decode")
    if pixels.shape[:2] == (image_size, image_size):
        return pixels  # already the model's size: resizing would only copy it
    return cv2.resize(pixels, (image_size, image_size), interpolation=cv2.INTER_AREA)
