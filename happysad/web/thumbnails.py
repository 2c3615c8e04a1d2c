"""Thumbnails of a job's images: read through the job's own storage, so only a URI that the
job's listing recorded, inside the job's source, can be read; made once, cached under
HAPPYSAD_HOME/cache/thumbnails."""

import hashlib
import os

from fastapi import HTTPException

from db import queries
from db.session import session_scope
from db.settings import get_settings

THUMBNAIL_PIXELS = 128  # square, as the model sees the image


def thumbnail_path(job_id: int, uri: str):
    name = hashlib.sha256(uri.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return get_settings().home_folder("cache") / "thumbnails" / str(job_id) / f"{name}.jpg"


def make_thumbnail(source: str, uri: str) -> bytes:
    import cv2

    from trainer.images import decode_pixels
    from trainer.storage import open_storage

    # The stored text decoded inside storage, which refuses a URI outside the source.
    data = open_storage(source).read_stored(uri)
    pixels = decode_pixels(data, THUMBNAIL_PIXELS, get_settings().max_image_pixels)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("cannot encode the thumbnail")
    return encoded.tobytes()


def thumbnail_jpeg(prediction_id: int) -> bytes:
    with session_scope() as session:
        prediction = queries.get_prediction(session, prediction_id)
        job = queries.get_job(session, prediction.job_id)
        source, uri = job.source, prediction.uri
    path = thumbnail_path(job.id, uri)
    if path.exists():
        return path.read_bytes()
    try:
        jpeg = make_thumbnail(source, uri)
    except (OSError, ValueError) as error:  # gone, unreadable, not an image (its error row)
        raise HTTPException(404, f"no thumbnail for prediction {prediction_id}: "
                                 f"{str(error).strip() or type(error).__name__}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    partial.write_bytes(jpeg)
    partial.replace(path)  # a reader never sees half a file
    return jpeg
