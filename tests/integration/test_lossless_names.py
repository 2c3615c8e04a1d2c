"""Lossless names: a file whose name is not UTF-8 used to be stored as \\xNN text, which
could equal another file's real name; the unique constraint then dropped the second row and
the job said done with total 3, classified 2."""

import os

import pytest

from tests.helpers.images import write_images
from tests.helpers.jobs import assert_each_image_once, submit
from trainer.storage.uri_text import decode_uri

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_names_that_render_alike_each_get_their_own_row(tmp_path, postgres, redis_url,
                                                       registered_baseline_model, start_worker):
    folder = tmp_path / "incoming"
    image = write_images(tmp_path / "one", 1)[0]
    names = [b"caf\xe9.jpg",   # Latin-1, not UTF-8
             b"caf\\xe9.jpg",  # a real name equal to the old rendering of the first
             b"caf%E9.jpg"]    # a real name equal to a percent-encoding of the first
    folder.mkdir()
    for name in names:
        with open(os.path.join(os.fsencode(folder), name), "wb") as file:
            file.write(open(image, "rb").read())
    start_worker("names").wait_ready()
    submission = submit(str(folder), batch_size=2)
    assert submission.total_images == 3

    root = os.path.realpath(folder)
    rows = assert_each_image_once(submission.job_id, stored_uris(root, names))
    assert len(rows) == 3 and all(row.label and row.error is None for row in rows.values())
    # Every stored URI leads back to its own file, byte for byte.
    assert sorted(os.fsencode(decode_uri(uri)) for uri in rows) == sorted(
        os.path.join(os.fsencode(root), name) for name in names)


def stored_uris(root: str, names: list[bytes]) -> list[str]:
    from trainer.storage.uri_text import encode_uri

    return [encode_uri(os.path.join(root, os.fsdecode(name))) for name in names]
