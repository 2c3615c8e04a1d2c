"""Fixtures of the integration tests: servers of a test's own."""

import contextlib
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers.processes import RedisServer, free_port


@pytest.fixture
def own_redis(tmp_path):
    servers = []

    def start(password: str | None = None) -> RedisServer:
        servers.append(RedisServer(tmp_path / f"redis{len(servers)}", password))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@contextlib.contextmanager
def moto_server(monkeypatch) -> Iterator[int]:
    """moto's S3 server (a real HTTP endpoint) on a free port, empty, with the test and its
    workers pointed at it; yields the port."""
    from moto.server import ThreadedMotoServer

    from db.settings import reset_settings

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto keeps its buckets in this process across server restarts: start each test empty.
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset",
                                                  method="POST")).close()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "HAPPYSAD_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
def moto_bucket(monkeypatch):
    """A bucket `photos` on moto's server, through a boto3 client."""
    import boto3

    with moto_server(monkeypatch) as port:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        client.create_bucket(Bucket="photos")
        yield client


@pytest.fixture
def s3_server(monkeypatch):
    """Buckets `photos` and `models` on moto's server; the s3fs filesystem the code uses."""
    from trainer.storage import s3_filesystem

    with moto_server(monkeypatch):
        filesystem = s3_filesystem()
        for bucket in ("photos", "models"):
            filesystem.mkdir(bucket)
        yield filesystem
