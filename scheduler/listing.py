"""A source listed as batches of image URIs, streamed: memory does not grow with the source.

Used by `happysad submit`, by `jobs resume` and by a worker's reconciler resuming a listing
whose submitter died; each URI is stored as lossless text (trainer.storage.uri_text).
"""

import logging
from collections.abc import Container, Iterator

from trainer.formats import is_candidate_image
from trainer.storage.uri_text import encode_uri

logger = logging.getLogger(__name__)


def iter_batches(storage, batch_size: int, skipped: list[int],
                 exclude: Container[str] = ()) -> Iterator[list[str]]:
    """The source's images in batches of stored URIs; `exclude` holds URIs already recorded
    (a resumed listing), which are left out."""
    batch = []
    for listing in storage.iter_files():
        if not is_candidate_image(storage, listing):
            skipped[0] += 1
            if listing.problem:
                logger.info("skipped %s: %s", listing.uri, listing.problem)
            continue
        uri = encode_uri(listing.uri)
        if uri in exclude:
            continue
        batch.append(uri)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
