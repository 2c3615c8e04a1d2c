"""Buckets through moto's S3 server (a real HTTP endpoint on localhost, not a patched client):
train from a bucket, keep models in a bucket, label a bucket with real worker processes."""

import json

import pytest

from tests.helpers.commands import happysad
from tests.helpers.images import upload_faces
from trainer.storage import StorageError, open_storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_train_and_label_through_a_bucket(s3_server, monkeypatch):
    upload_faces(s3_server, "photos/train", 12, labelled=True, seed=0)
    upload_faces(s3_server, "photos/incoming", 5, labelled=False, seed=1)
    s3_server.pipe_file("photos/incoming/readme.jpg", b"not really a jpeg")
    monkeypatch.setenv("HAPPYSAD_MODEL_STORE", "s3://models/versions")

    # Promoted whatever it scores: one epoch on a few drawings may be no better than the
    # majority class, which `--promote auto` never promotes; this test is about the bucket, so
    # the quickest architecture (the default's face detection costs seconds more per step).
    trained = json.loads(happysad("train", "s3://photos/train", "--architecture", "baseline",
                                  "--epochs", "1", "--image-size", "32", "--promote", "always",
                                  "--json").stdout)
    assert trained["path"] == "s3://models/versions/v0001/model.keras"
    assert s3_server.exists("models/versions/v0001/metadata.json")

    record = json.loads(happysad("submit", "s3://photos/incoming", "--wait", "--json",
                                 "--batch-size", "4").stdout)
    assert record["status"] == "done" and record["total"] == 11
    assert record["classified"] == 10 and record["failed"] == 1
    results = json.loads(happysad("results", str(record["job_id"]), "--format", "json").stdout)
    assert all(r["uri"].startswith("s3://photos/incoming/") for r in results)
    assert len({r["uri"] for r in results}) == 11


def test_bucket_storage_refuses_reads_outside_its_prefix(s3_server):
    s3_server.pipe_file("photos/private/secret.jpg", b"x")
    s3_server.pipe_file("photos/public/ok.jpg", b"y")
    storage = open_storage("s3://photos/public")
    assert [entry.uri for entry in storage.iter_files()] == ["s3://photos/public/ok.jpg"]
    assert storage.read_bytes("s3://photos/public/ok.jpg") == b"y"
    with pytest.raises(StorageError, match="outside"):
        storage.read_bytes("s3://photos/private/secret.jpg")
    with pytest.raises(StorageError, match="outside"):
        storage.read_bytes("s3://photos/public/../private/secret.jpg")
    assert not open_storage("s3://photos/missing").exists()
