"""Buckets through moto's S3 server (a real HTTP endpoint on localhost, not a patched client):
train from a bucket, keep models in a bucket, label a bucket with real worker processes."""

import json
import socket
import urllib.request

import cv2
import pytest

from tests.conftest import happysad
from trainer.sample_data import draw_face
from trainer.storage import StorageError, open_storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def s3_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto keeps its buckets in this process across server restarts: start each test empty.
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset",
                                                  method="POST")).close()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "HAPPYSAD_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    from db.settings import reset_settings
    from trainer.storage import s3_filesystem

    reset_settings()
    filesystem = s3_filesystem()
    for bucket in ("photos", "models"):
        filesystem.mkdir(bucket)
    yield filesystem
    server.stop()


def upload_faces(filesystem, prefix: str, per_class: int, labelled: bool, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    for mood in ("happy", "sad"):
        for index in range(per_class):
            ok, data = cv2.imencode(".jpg", draw_face(mood, 48, rng))
            folder = f"{prefix}/{mood}" if labelled else prefix
            filesystem.pipe_file(f"{folder}/{mood}_{index}.jpg", data.tobytes())


def test_train_and_label_through_a_bucket(s3_server, monkeypatch):
    upload_faces(s3_server, "photos/train", 12, labelled=True, seed=0)
    upload_faces(s3_server, "photos/incoming", 5, labelled=False, seed=1)
    s3_server.pipe_file("photos/incoming/readme.jpg", b"not really a jpeg")
    monkeypatch.setenv("HAPPYSAD_MODEL_STORE", "s3://models/versions")

    trained = json.loads(happysad("train", "s3://photos/train", "--epochs", "1",
                                  "--image-size", "32", "--json").stdout)
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
