"""What counts as an image, decided without decoding: names, the first bytes of a file, and
the formats the decode path (trainer.images) accepts.

Light on purpose (no OpenCV, NumPy or Pillow): `happysad submit` sniffs every file of a source
through this module, and 16 bytes need no image library.
"""

import os

from trainer.storage import Listing, Storage

# Bump when the tensor a file turns into changes (trainer.images decodes; the model scales):
# model versions record it, and a worker refuses a model whose version it cannot feed.
# 1: the model took pixels scaled to [0, 1] outside it (workers still feed those that way);
# 2: the model takes pixels in [0, 255] and scales them itself (its first layer).
PREPROCESSING_VERSION = 2
SERVABLE_PREPROCESSING_VERSIONS = (1, 2)  # trainer.images.INPUT_SCALES says how each is fed

# Names that say "image": such a file always gets a row, so a broken photo is reported rather
# than silently skipped. SVG and HEIC are here so that their refusal is explained.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".gif", ".webp",
                              ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".heic", ".heif",
                              ".svg"})

# What OpenCV can decode and what a header tells us (Pillow's format names).
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM", "DIB"})

# How many leading bytes `looks_like_image` needs.
SNIFF_BYTES = 16

_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"GIF8", b"II*\x00", b"MM\x00*")


def looks_like_image(head: bytes) -> bool:
    """A cheap sniff of a file's first bytes: is it worth trying to decode?"""
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def has_image_name(uri: str) -> bool:
    return os.path.splitext(uri.rsplit("/", 1)[-1])[1].lower() in IMAGE_EXTENSIONS


def is_candidate_image(storage: Storage, listing: Listing) -> bool:
    """Worth a row: an image-like name, or content that starts like an image. Anything that
    claims to be an image but is not gets an error row rather than vanishing (a link named
    .jpg that leads out of the source too: the worker refuses to read it and says so)."""
    if listing.skip:
        return False  # a FIFO, socket or device: opening it could block forever
    if listing.uri.rsplit("/", 1)[-1].startswith("."):
        return False  # hidden files (.DS_Store, ._photo.jpg resource forks) are not photos
    if has_image_name(listing.uri):
        return True
    if listing.problem:
        return False
    try:
        return looks_like_image(storage.read_head(listing.uri, SNIFF_BYTES))
    except OSError:
        return True  # unreadable: let the worker record why
