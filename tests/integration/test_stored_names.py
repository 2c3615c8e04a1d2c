"""One image never stands for another: `caf\\xe9.jpg` (not UTF-8) is stored as `caf%E9.jpg`,
and a real `caf%E9.jpg` as `caf%25E9.jpg`. Every reader used to take the stored text as a path
(only the worker decoded it): the `%` file got no thumbnail, report image or correction, and
the other file was read in its place, so a retrain could learn one picture under the label a
person gave the other. Each reader now goes through storage's `read_stored`."""

import os

import cv2
import numpy as np
import pytest

from db import queries
from db.queries import reviews
from db.session import session_scope
from tests.helpers.images import encode, solid_rgb
from tests.helpers.jobs import submit, wait_for_job_done

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LATIN1, PERCENT = b"caf\xe9.jpg", b"caf%E9.jpg"
COLOURS = {LATIN1: (220, 30, 30), PERCENT: (30, 30, 220)}  # red and blue: told apart at a glance


def mean_rgb(pixels_rgb: np.ndarray) -> tuple:
    return tuple(int(round(value)) for value in pixels_rgb.reshape(-1, 3).mean(axis=0))


def is_colour(pixels_rgb: np.ndarray, rgb: tuple) -> bool:
    return all(abs(got - want) < 25 for got, want in zip(mean_rgb(pixels_rgb), rgb))


def test_each_reader_reads_its_own_image(tmp_path, postgres, redis_url, registered_baseline_model,
                                         start_worker):
    from happysad.web.thumbnails import thumbnail_jpeg
    from trainer.corrections import export_corrections, read_corrections
    from trainer.storage import open_storage
    from worker.report import contact_sheet

    folder = tmp_path / "incoming"
    folder.mkdir()
    for name, rgb in COLOURS.items():
        with open(os.path.join(os.fsencode(folder), name), "wb") as file:
            file.write(encode(solid_rgb(48, 48, rgb), ".jpg"))
    start_worker("stored-names").wait_ready()
    job_id = submit(str(folder), batch_size=1).job_id
    wait_for_job_done(job_id, timeout=180)
    with session_scope() as session:
        rows = {os.fsencode(os.path.basename(_decoded(p.uri))): p
                for p in queries.iter_predictions(session, job_id)}
        assert set(rows) == set(COLOURS) and all(p.error is None for p in rows.values())
        session.expunge_all()

    # Thumbnails (the web app's), one per file, each of its own file.
    for name, row in rows.items():
        thumbnail = cv2.imdecode(np.frombuffer(thumbnail_jpeg(row.id), np.uint8),
                                 cv2.IMREAD_COLOR)[..., ::-1]
        assert is_colour(thumbnail, COLOURS[name]), (name, mean_rgb(thumbnail))

    # The job report's contact sheet draws each row's own image.
    sheet = contact_sheet(open_storage(str(folder)),
                          {"any": {"most confident": [rows[LATIN1], rows[PERCENT]]}})
    drawn = [axes.images[0].get_array() if axes.images else None for axes in sheet.axes]
    assert drawn[0] is not None and is_colour(np.asarray(drawn[0]), COLOURS[LATIN1])
    assert drawn[1] is not None and is_colour(np.asarray(drawn[1]), COLOURS[PERCENT])

    # Reviews: a person calls the red one happy and the blue one sad. The retrain's
    # corrections and the export each hold the right bytes under the right label and name.
    with session_scope() as session:
        reviews.review_prediction(session, rows[LATIN1].id, "happy", "ann")
        reviews.review_prediction(session, rows[PERCENT].id, "sad", "ann")
    with session_scope() as session:
        reviewed = reviews.reviewed_images(session)
    corrections, skipped = read_corrections(reviewed)
    assert skipped == []
    root = os.fsencode(os.path.realpath(folder))
    own_bytes = {name: open(os.path.join(root, name), "rb").read() for name in COLOURS}
    assert sorted((c.label, c.data) for c in corrections) == sorted(
        [("happy", own_bytes[LATIN1]), ("sad", own_bytes[PERCENT])])
    out = tmp_path / "out"
    export_corrections(corrections, out)
    assert open(os.path.join(os.fsencode(out), b"happy", LATIN1), "rb").read() == own_bytes[LATIN1]
    assert open(os.path.join(os.fsencode(out), b"sad", PERCENT), "rb").read() == own_bytes[PERCENT]


def _decoded(uri: str) -> str:
    from trainer.storage.uri_text import decode_uri

    return decode_uri(uri)
