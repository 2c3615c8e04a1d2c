"""Hostile input against real workers and the real CLI: files that are not what they claim,
forged and pickled task messages, bad requests, and secrets that must never be written down.

Each hostile file gets exactly one row (a clear error or a correct prediction) and neither the
job nor the worker stops; each bad request gets a one-line error and writes nothing.
"""

import json
import os
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from db import queries
from db.session import session_scope
from tests.helpers.commands import happysad
from tests.helpers.images import pil_bytes, png_header_only
from tests.helpers.jobs import assert_each_image_once, submit, wait_for_job_done
from tests.helpers.processes import log_text
from trainer.sample_data import draw_face
from worker.task_names import CLASSIFY_BATCH_TASK

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# --- the hostile folder ----------------------------------------------------------------------

def real_png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros: a few hundred kB that would decode to width*height bytes."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    compressor, row = zlib.compressobj(9), b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def write_undecodable_files(folder: Path) -> dict[str, str]:
    """Files that must each get an error row; returns name -> words the error must contain."""
    face_jpeg = cv2.imencode(".jpg", draw_face("sad", 64, np.random.default_rng(1)))[1].tobytes()
    face_png = cv2.imencode(".png", draw_face("sad", 64, np.random.default_rng(1)))[1].tobytes()
    files = {
        "zero.jpg": (b"", "empty file (0 bytes)"),
        "truncated.png": (face_png[: len(face_png) // 2], "corrupt or truncated"),
        "truncated.jpg": (face_jpeg[: len(face_jpeg) // 2], "corrupt or truncated"),
        "notes-named.jpg": (b"just some text, named like a photo\n", "not a recognised image"),
        "page.jpg": (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML document"),
        "vector.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG"),
        "phone.heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
        "claims-30000x30000.png": (png_header_only(30000, 30000), "too large"),
        "bomb-12000x12000.png": (real_png_bomb(12000, 12000), "12000x12000 pixels, over the limit"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: words for name, (_, words) in files.items()}


def write_decodable_variants(folder: Path) -> dict[str, str | None]:
    """One face in many encodings; returns name -> the reference it must predict exactly like
    (None: a prediction is enough, the pixels differ from the reference)."""
    face = draw_face("happy", 64, np.random.default_rng(2))  # BGR
    rgb = Image.fromarray(cv2.cvtColor(face, cv2.COLOR_BGR2RGB))
    cv2.imwrite(str(folder / "reference.png"), face)
    cv2.imwrite(str(folder / "reference.jpg"), face, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(folder / "deep16.png"), face.astype(np.uint16) * 257)  # 16 bits a channel
    (folder / "rgba.png").write_bytes(pil_bytes(rgb.convert("RGBA"), "PNG"))  # opaque alpha
    (folder / "palette.png").write_bytes(pil_bytes(rgb.convert("P"), "PNG"))
    (folder / "gray.png").write_bytes(pil_bytes(rgb.convert("L"), "PNG"))
    (folder / "cmyk.jpg").write_bytes(pil_bytes(rgb.convert("CMYK"), "JPEG", quality=95))
    (folder / "two-frames.gif").write_bytes(pil_bytes(rgb, "GIF", save_all=True,
                                                      append_images=[rgb.rotate(90)]))
    (folder / "face.webp").write_bytes(pil_bytes(rgb, "WEBP", lossless=True))
    # Stored turned a quarter left, with the EXIF tag that says "turn right to show".
    sideways = rgb.transpose(Image.Transpose.ROTATE_90)
    exif = sideways.getexif()
    exif[0x0112] = 6
    (folder / "exif-rotated.jpg").write_bytes(pil_bytes(sideways, "JPEG", exif=exif, quality=95))
    (folder / ("long-" + "x" * 240 + ".png")).write_bytes((folder / "reference.png").read_bytes())
    non_utf8 = os.path.join(os.fsencode(folder), b"caf\xe9-latin1.png")  # not valid UTF-8
    Path(os.fsdecode(non_utf8)).write_bytes((folder / "reference.png").read_bytes())
    return {"reference.png": None, "reference.jpg": None, "deep16.png": "reference.png",
            "rgba.png": "reference.png", "palette.png": None, "gray.png": None, "cmyk.jpg": None,
            "two-frames.gif": None, "face.webp": "reference.png",
            "exif-rotated.jpg": "reference.jpg", "long-" + "x" * 240 + ".png": "reference.png",
            os.fsdecode(b"caf\xe9-latin1.png"): "reference.png"}


def write_link_and_permission_cases(folder: Path, outside: Path) -> dict[str, str]:
    outside.mkdir()
    (outside / "secret.jpg").write_bytes((folder / "reference.jpg").read_bytes())
    os.symlink(outside / "secret.jpg", folder / "leads-out.jpg")
    os.symlink("loop.jpg", folder / "loop.jpg")
    os.symlink("nowhere.jpg", folder / "dangling.jpg")
    os.symlink(".", folder / "folder-loop")  # a link to a folder inside: not walked twice
    (folder / "unreadable.jpg").write_bytes((folder / "reference.jpg").read_bytes())
    os.chmod(folder / "unreadable.jpg", 0)
    return {"leads-out.jpg": "refusing to read outside the source",
            "loop.jpg": "broken symbolic link or symbolic link loop",
            "dangling.jpg": "broken symbolic link or symbolic link loop",
            "unreadable.jpg": "permission denied"}


def start_worker_without_root_file_access(start_worker, monkeypatch, name: str):
    """Tests run as root in containers, and root reads a mode-000 file anyway: run the worker
    without the capabilities that let root ignore file permissions, as a deployed worker
    (not root) would be."""
    if os.geteuid() != 0:
        return start_worker(name)
    wrapper = Path(os.environ["HAPPYSAD_HOME"]).parent / "python-without-dac"
    wrapper.write_text("#!/bin/sh\nexec setpriv --inh-caps -dac_override,-dac_read_search "
                       "--bounding-set -dac_override,-dac_read_search "
                       f'{sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    with monkeypatch.context() as patch:  # WorkerProcess runs `sys.executable -m celery`
        patch.setattr(sys, "executable", str(wrapper))
        return start_worker(name)


def test_hostile_files_each_get_one_clear_row(tmp_path, postgres, redis_url, monkeypatch,
                                              registered_model, start_worker):
    folder = tmp_path / "incoming"
    folder.mkdir()
    errors = write_undecodable_files(folder)
    matches = write_decodable_variants(folder)
    errors |= write_link_and_permission_cases(folder, tmp_path / "outside")
    (folder / "notes.txt").write_text("not an image, not named like one: skipped")
    os.mkfifo(folder / "pipe.jpg")  # skipped, never opened (open() would wait for a writer)
    os.symlink("pipe.jpg", folder / "link-to-pipe.jpg")
    worker = start_worker_without_root_file_access(start_worker, monkeypatch, "hostile")
    worker.wait_ready()
    submission = submit(str(folder), batch_size=5)
    assert submission.skipped_files == 3

    root = os.path.realpath(folder)
    uris = [os.path.join(root, name) for name in [*errors, *matches]]
    rows = assert_each_image_once(submission.job_id, [_storable(uri) for uri in uris])
    by_name = {uri.rsplit("/", 1)[1]: row for uri, row in rows.items()}
    for name, words in errors.items():
        assert by_name[name].label is None and words in by_name[name].error, name
    for name, reference in matches.items():
        row = by_name[_storable(name)]
        assert row.error is None and row.label in ("happy", "sad"), name
        if reference:  # same pixels as the reference once decoded: the same answer
            expected = by_name[reference].probabilities["happy"]
            assert row.probabilities["happy"] == pytest.approx(expected, abs=0.03), name
    # The worker took it all in its stride: no process died, and it takes the next job (the
    # folder the link led to, submitted on purpose this time).
    second = submit(str(tmp_path / "outside"), batch_size=5)
    assert wait_for_job_done(second.job_id)["classified"] == 1
    assert "WorkerLostError" not in log_text(worker) and worker.process.poll() is None


def _storable(text: str) -> str:
    """How the database shows a name that is not UTF-8 (see trainer.storage.uri_text)."""
    from trainer.storage.uri_text import encode_uri

    return encode_uri(text)


# --- hostile messages ----------------------------------------------------------------------

def test_forged_task_cannot_make_a_worker_read_outside_the_source(
        tmp_path, postgres, redis_url, registered_baseline_model, start_worker):
    source = tmp_path / "incoming"
    source.mkdir()
    cv2.imwrite(str(source / "inside.jpg"), draw_face("happy", 64, np.random.default_rng(3)))
    for folder in (tmp_path / "secret", tmp_path / "incoming-secret"):
        folder.mkdir()
        os.mkfifo(folder / "trap.jpg")  # opening it would block the worker: the job would hang
    forged = [str(tmp_path / "secret" / "trap.jpg"), f"{source}/../secret/trap.jpg",
              str(tmp_path / "incoming-secret" / "trap.jpg"),
              f"file://{tmp_path / 'secret' / 'trap.jpg'}"]
    with session_scope() as session:
        job_id = queries.create_job(session, str(source), registered_baseline_model, 8).id
        queries.seal_job(session, job_id, len(forged) + 1, 1, 0)
    start_worker("forged").wait_ready()
    from scheduler.celery_app import sender_app

    sender_app().send_task(CLASSIFY_BATCH_TASK,
                           args=[job_id, 0, [str(source / "inside.jpg"), *forged]])

    rows = assert_each_image_once(job_id, [str(source / "inside.jpg"), *forged])
    assert rows.pop(str(source / "inside.jpg")).label in ("happy", "sad")
    for uri, row in rows.items():
        assert row.error.startswith("refusing to read outside the source"), uri


class _RunsCodeWhenUnpickled:
    """A pickle payload that would create a file if any worker ever unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_pickled_task_is_refused_and_never_run(tmp_path, postgres, redis_url,
                                               registered_baseline_model, start_worker):
    from scheduler.celery_app import sender_app

    marker = tmp_path / "pickle-ran"
    worker = start_worker("json-only")
    worker.wait_ready()
    sender_app().send_task(CLASSIFY_BATCH_TASK, args=[_RunsCodeWhenUnpickled(marker)],
                           serializer="pickle")
    folder = tmp_path / "incoming"
    folder.mkdir()
    cv2.imwrite(str(folder / "face.jpg"), draw_face("sad", 64, np.random.default_rng(4)))
    job = wait_for_job_done(submit(str(folder)).job_id)  # queued behind the pickle

    assert job["classified"] == 1 and not marker.exists()
    assert "Refusing to deserialize untrusted content of type pickle" in log_text(worker)
    assert worker.process.poll() is None


# --- bad requests --------------------------------------------------------------------------

def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


BAD_REQUESTS = {
    # name: (arguments, environment changes, what to do to the model file, expected words)
    "missing source": (["submit", "{tmp}/nowhere"], {}, None, "source not found"),
    "empty folder": (["submit", "{tmp}/empty"], {}, None, "no images found"),
    "unknown model version": (["submit", "{tmp}/incoming", "--model", "99"], {}, None,
                              "model version 99 does not exist"),
    "tampered model file": (["submit", "{tmp}/incoming"], {}, _tamper,
                            "does not match its recorded hash"),
    "corrupt model file": (["submit", "{tmp}/incoming"], {}, _truncate,
                           "does not match its recorded hash"),
    "unreachable database": (["submit", "{tmp}/incoming"], {
        "HAPPYSAD_DATABASE_URL": "postgresql://postgres:pg-s3cret@127.0.0.1:1/happysad"}, None,
        "cannot reach the database at postgresql://postgres:***@127.0.0.1:1/happysad"),
    "unparseable database URL": (["jobs"], {"HAPPYSAD_DATABASE_URL": "not a url"}, None,
                                 "cannot use the database URL"),
    "database driver not installed": (["jobs"], {
        "HAPPYSAD_DATABASE_URL": "mysql://root:my-s3cret@127.0.0.1/happysad"}, None,
        "cannot use the database URL 'mysql://root:***@127.0.0.1/happysad'"),
    "unreachable broker": (["submit", "{tmp}/incoming"], {
        "HAPPYSAD_BROKER_URL": "redis://:redis-s3cret@127.0.0.1:1/0"}, None,
        "cannot reach the broker at redis://:***@127.0.0.1:1/0"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gives_one_line_and_writes_nothing(case, tmp_path, postgres, redis_url,
                                                       registered_baseline_model):
    arguments, environment, damage, expected = BAD_REQUESTS[case]
    (tmp_path / "empty").mkdir()
    (tmp_path / "incoming").mkdir()
    cv2.imwrite(str(tmp_path / "incoming" / "face.jpg"),
                draw_face("happy", 64, np.random.default_rng(5)))
    if damage:
        with session_scope() as session:
            damage(Path(queries.get_model_version(session, registered_baseline_model).path))
    result = happysad(*[a.format(tmp=tmp_path) for a in arguments],
                      env=dict(os.environ, **environment), check=False)

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert expected in result.stderr and "s3cret" not in result.stderr
    with session_scope() as session:  # nothing half-written
        assert session.scalar(text("SELECT count(*) FROM jobs")) == 0


def test_model_tampered_after_submission_gives_error_rows(tmp_path, postgres, redis_url,
                                                          registered_baseline_model,
                                                          start_worker):
    folder = tmp_path / "incoming"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"face{index}.jpg"),
                    draw_face("sad", 64, np.random.default_rng(index)))
    submission = submit(str(folder), batch_size=2)  # checked intact, then tampered with
    with session_scope() as session:
        _tamper(Path(queries.get_model_version(session, registered_baseline_model).path))
    start_worker("refuses").wait_ready()

    rows = assert_each_image_once(submission.job_id, [str(p) for p in sorted(folder.iterdir())],
                                  status="failed")  # every image failed: the job says so
    for row in rows.values():
        assert row.label is None and "does not match its recorded hash" in row.error


# --- secrets -------------------------------------------------------------------------------

def test_no_secrets_in_logs_output_or_database(tmp_path, postgres, own_redis, monkeypatch,
                                               registered_baseline_model, start_worker):
    monkeypatch.setenv("HAPPYSAD_BROKER_URL", own_redis(password="broker-s3cret").url)
    # Local PostgreSQL trusts every login, so a password in the URL is accepted and ignored.
    monkeypatch.setenv("HAPPYSAD_DATABASE_URL", postgres.replace("postgres@",
                                                                 "postgres:db-s3cret@"))
    from db.settings import reset_settings

    reset_settings()
    folder = tmp_path / "incoming"
    folder.mkdir()
    cv2.imwrite(str(folder / "face.jpg"), draw_face("happy", 64, np.random.default_rng(6)))
    worker = start_worker("discreet")
    worker.wait_ready()
    outputs = [happysad("db", "upgrade"), happysad("submit", str(folder), "--json")]
    job_id = json.loads(outputs[-1].stdout)["job_id"]
    wait_for_job_done(job_id)
    outputs += [happysad("jobs", "show", str(job_id), "--json"), happysad("models", "list")]

    printed = "".join(result.stdout + result.stderr for result in outputs)
    assert "postgres:***@" in printed  # masked where shown, not merely absent
    with session_scope() as session:
        tables = session.scalars(text("SELECT tablename FROM pg_tables "
                                      "WHERE schemaname = 'public'")).all()
        stored = " ".join(" ".join(session.scalars(text(f'SELECT t::text FROM "{name}" t')))
                          for name in tables)
    assert "predictions" in tables and str(folder) in stored
    for secret in ("broker-s3cret", "db-s3cret"):
        assert secret not in log_text(worker) and secret not in printed and secret not in stored
