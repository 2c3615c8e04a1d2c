"""The API reads no body before its checks, on a real `happysad serve` (Uvicorn): a write
without the token is answered 401 before its body is sent, a body over the limit 413 from its
Content-Length or while it streams, and a 422 never echoes a large input. Before, a 300 MB POST
was read whole (940 MB of server memory) before its 401, and a 422 echoed 50 MB back."""

import json
import os
import select
import socket
import subprocess
import sys
import time

import pytest

from tests.unit.happysad.test_web_security import free_port, listening_addresses

TOKEN = "limit-test-token"
LIMIT = 1024 * 1024  # the default


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPYSAD_")}
    env |= {"HAPPYSAD_API_TOKEN": TOKEN, "HAPPYSAD_HOME": str(tmp_path_factory.mktemp("home"))}
    process = subprocess.Popen([sys.executable, "-m", "happysad.cli", "serve", "--port",
                                str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not listening_addresses(port) and time.monotonic() < deadline:
            assert process.poll() is None, "happysad serve exited"
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        process.wait(30)


def exchange(port: int, head: dict, body_chunks, chunked: bool = False) -> tuple[int, bytes]:
    """Send a POST's head, then its body a chunk at a time, stopping as soon as the server
    answers; the status and answer body. Fails if no answer comes (the server waits for the
    body it was promised)."""
    lines = ["POST /api/v1/jobs HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in head.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for chunk in body_chunks:
                if select.select([connection], [], [], 0)[0]:
                    break  # answered already
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
                                   if chunked else chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is waiting
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or len(answer) < _expected_length(answer):
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        except socket.timeout:
            raise AssertionError(f"no answer within 30 s: {answer[:200]!r}") from None
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


def _expected_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return 0


def auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_a_write_without_the_token_is_refused_before_its_body_is_sent(server):
    # 300 MB promised, 1 KB sent: the answer comes without waiting for the rest.
    status, body = exchange(server, {"Content-Length": 300 * 1024 * 1024}, [b"{" + b" " * 1023])
    assert status == 401 and "HAPPYSAD_API_TOKEN" in json.loads(body)["detail"]
    status, _ = exchange(server, {"Content-Length": 300 * 1024 * 1024,
                                  "Authorization": "Bearer wrong"}, [b"{"])
    assert status == 401


def test_a_body_over_the_limit_is_refused_from_its_length_and_while_it_streams(server):
    status, body = exchange(server, {"Content-Length": 50 * 1024 * 1024} | auth(), [b"{"])
    assert status == 413 and len(body) < 200
    assert json.loads(body) == {"detail": f"request body too large: at most {LIMIT} bytes "
                                          "(HAPPYSAD_MAX_REQUEST_BYTES)"}
    # No Content-Length (chunked): counted as it arrives, stopped past the limit.
    chunks = (b"x" * 65536 for _ in range(5 * 1024 * 1024 // 65536))
    status, body = exchange(server, {"Transfer-Encoding": "chunked"} | auth(), chunks,
                            chunked=True)
    assert status == 413 and "too large" in json.loads(body)["detail"]


def test_a_validation_error_never_echoes_a_large_input(server):
    payload = json.dumps({"source": "x" * 900_000, "batch_size": "y" * 10_000}).encode()
    status, body = exchange(server, {"Content-Length": len(payload)} | auth(), [payload])
    assert status == 422 and len(body) < 2000, len(body)
    fields = {item["loc"][-1]: item for item in json.loads(body)["detail"]}
    assert set(fields) == {"source", "batch_size"}
    assert fields["source"]["input"].startswith("xxx") and "900000 characters" in \
        fields["source"]["input"]
