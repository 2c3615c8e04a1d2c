"""The web app's security rules, each on its own: loopback by default, no non-loopback serving
without a token, writes need the token, sources confined to HAPPYSAD_ALLOWED_SOURCES,
thumbnails only of a job's own images, file names escaped, forms protected against CSRF."""

import os
import re
import socket
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from db import queries
from db.session import session_scope
from tests.helpers.records import add_version, rows

TOKEN = "s3cret-token-for-tests"


def client(monkeypatch, token: str | None = TOKEN, **env) -> TestClient:
    from db.settings import reset_settings
    from happysad.web.app import create_app

    if token:
        monkeypatch.setenv("HAPPYSAD_API_TOKEN", token)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    return TestClient(create_app(), base_url="http://127.0.0.1")


def auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def job_with_rows(source: str, uris: list[str]) -> int:
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, source, 1, batch_size=len(uris)).id
        queries.record_batch(session, job_id, 0, rows(job_id, uris), "w")
        queries.seal_job(session, job_id, len(uris), 1, 0)
    return job_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local addresses listening on `port`, from the kernel's own table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_serve_listens_on_loopback_by_default():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "happysad.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not listening_addresses(port) and time.monotonic() < deadline:
            assert server.poll() is None, "happysad serve exited"
            time.sleep(0.3)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_serving_beyond_loopback_without_a_token_is_refused_at_start(host):
    env = {k: v for k, v in os.environ.items() if k != "HAPPYSAD_API_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "happysad.cli", "serve", "--host", host,
                             "--port", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: refusing to serve on {host} without "
                                     "HAPPYSAD_API_TOKEN: set a token, or serve on 127.0.0.1 "
                                     "(the default)")


def test_loopback_addresses_and_a_token_are_accepted(monkeypatch):
    from db.settings import reset_settings
    from happysad.web.server import check_address

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_address(host)
    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    reset_settings()
    check_address("0.0.0.0")


def test_writes_need_the_token(monkeypatch):
    api = client(monkeypatch)
    writes = [("post", "/api/v1/jobs", {"source": "/tmp"}), ("post", "/api/v1/jobs/1/cancel", None),
              ("post", "/api/v1/models/1/promote", None), ("post", "/api/v1/models/rollback", None),
              ("post", "/api/v1/retrain-runs", {"force": False})]
    for method, path, body in writes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = getattr(api, method)(path, json=body, headers=headers)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert "Authorization: Bearer TOKEN" in answer.json()["detail"]
    assert api.get("/api/v1/jobs").status_code == 200  # reads are open
    assert api.post("/api/v1/jobs/1/cancel", headers=auth()).status_code == 404  # let through


def test_without_a_token_configured_nothing_can_write(monkeypatch):
    api = client(monkeypatch, token=None)
    answer = api.post("/api/v1/jobs", json={"source": "/tmp"}, headers=auth())
    assert answer.status_code == 403
    assert answer.json() == {"detail": "writes are disabled: the server has no HAPPYSAD_API_TOKEN"}


def test_sources_must_lie_under_the_allowed_roots(monkeypatch, tmp_path, isolated_env):
    allowed = tmp_path / "allowed"
    (allowed / "photos").mkdir(parents=True)
    os.symlink("/etc", allowed / "etc-link")
    api = client(monkeypatch, HAPPYSAD_ALLOWED_SOURCES=f"{allowed},s3://bucket/incoming")
    for source in ["/etc", f"{allowed}/../../../etc", f"{allowed}/etc-link", "file:///etc",
                   str(isolated_env), f"{allowed}-sibling", "s3://bucket/other",
                   "s3://bucket/incoming/../secret", "s3://bucket/incomingx", "s3://other/incoming"]:
        answer = api.post("/api/v1/jobs", json={"source": source}, headers=auth())
        assert answer.status_code == 400, (source, answer.text)
        assert "allowed root" in answer.json()["detail"] or "'..'" in answer.json()["detail"]
    inside = api.post("/api/v1/jobs", json={"source": str(allowed / "photos")}, headers=auth())
    assert inside.status_code == 400  # allowed, then refused for what it is: no images
    assert inside.json()["detail"].startswith("no production model") or \
        "no images found" in inside.json()["detail"]


def test_by_default_only_the_home_folder_is_allowed(monkeypatch, isolated_env, tmp_path):
    api = client(monkeypatch)
    (isolated_env / "incoming").mkdir(parents=True)
    outside = api.post("/api/v1/jobs", json={"source": str(tmp_path)}, headers=auth())
    assert outside.status_code == 400 and "allowed root" in outside.json()["detail"]
    inside = api.post("/api/v1/jobs", json={"source": str(isolated_env / "incoming")},
                      headers=auth())
    assert "allowed root" not in inside.json()["detail"]


def test_thumbnails_only_for_images_inside_the_jobs_source(monkeypatch, tmp_path):
    source = tmp_path / "incoming"
    source.mkdir()
    api = client(monkeypatch)
    job_id = job_with_rows(str(source), [str(source / "gone.jpg"), "/etc/passwd"])
    with session_scope() as session:
        ids = {p.uri: p.id for p in queries.iter_predictions(session, job_id)}
    escaped = api.get(f"/api/v1/predictions/{ids['/etc/passwd']}/thumbnail")
    assert escaped.status_code == 404 and "refusing to read outside the source" in escaped.text
    assert api.get(f"/api/v1/predictions/{ids[str(source / 'gone.jpg')]}/thumbnail").status_code == 404
    assert api.get("/api/v1/predictions/999999/thumbnail").status_code == 404
    # No route takes a path: a caller-written one finds nothing to serve.
    assert api.get("/api/v1/thumbnail", params={"path": "/etc/passwd"}).status_code == 404


def test_file_names_are_escaped_on_pages(monkeypatch, tmp_path):
    source = tmp_path / "incoming"
    source.mkdir()
    name = "<script>alert(1)</script>.jpg"
    api = client(monkeypatch)
    job_id = job_with_rows(str(source), [str(source / name), str(source / '"><img src=x onerror=alert(2)>.jpg')])
    page = api.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in page.text
    assert "<img src=x" not in page.text
    assert re.search(r"script-src 'self'", page.headers["content-security-policy"])


def test_forms_need_the_sessions_csrf_token(monkeypatch, tmp_path):
    api = client(monkeypatch)
    login_page = api.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login_page.text)[1]
    # Without the token, or with another, a form is refused, even a login.
    for form in ({"token": TOKEN}, {"token": TOKEN, "csrf": "forged"}):
        assert api.post("/login", data=form).status_code in (403, 422)
    logged_in = api.post("/login", data={"token": TOKEN, "csrf": csrf}, follow_redirects=False)
    assert logged_in.status_code == 303
    source = tmp_path / "incoming"
    source.mkdir()
    job_id = job_with_rows(str(source), [str(source / "a.jpg")])
    forged = api.post(f"/jobs/{job_id}/cancel", data={"csrf": "forged"})
    assert forged.status_code == 403 and "another site" in forged.text
    fresh = TestClient(api.app, base_url="http://127.0.0.1")  # another browser: no session
    assert fresh.post(f"/jobs/{job_id}/cancel", data={"csrf": csrf}).status_code == 403
    done = api.post(f"/jobs/{job_id}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    with session_scope() as session:
        assert queries.get_job(session, job_id).status == "cancelled"
    assert "samesite=strict" in logged_in.headers["set-cookie"].lower()


def test_a_wrong_token_does_not_log_in(monkeypatch):
    api = client(monkeypatch)
    csrf = re.search(r'name="csrf" value="([^"]+)"', api.get("/login").text)[1]
    answer = api.post("/login", data={"token": "guess", "csrf": csrf})
    assert answer.status_code == 401 and "wrong token" in answer.text
    assert "Log in" in api.get("/").text and "submit-form" not in api.get("/").text


def test_openapi_docs_are_served_without_a_network(monkeypatch):
    api = client(monkeypatch)
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert api.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}/cancel", "/api/v1/jobs/{job_id}/predictions",
            "/api/v1/jobs/{job_id}/predictions.csv", "/api/v1/models/{version}/promote",
            "/api/v1/models/rollback", "/api/v1/retrain-runs"} <= set(spec["paths"])


def test_the_web_app_loads_no_tensorflow_on_import():
    code = ("import sys, happysad.web.app; happysad.web.app.create_app(); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def start_server(host: str, port: int, env: dict, log) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "happysad.cli", "serve", "--host", host,
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while not listening_addresses(port) and time.monotonic() < deadline:
        assert server.poll() is None, "happysad serve exited"
        time.sleep(0.3)
    return server


def get(url: str, headers: dict | None = None) -> tuple[int, str, str]:
    """Status, final URL and body, without following a redirect."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
            return answer.status, answer.headers.get("location", ""), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("location", ""), error.read().decode()


def test_serving_on_all_addresses_every_read_needs_the_token(tmp_path, isolated_env):
    job_id = job_with_rows("/photos", ["/photos/a.jpg"])
    port = free_port()
    env = dict(os.environ, HAPPYSAD_API_TOKEN=TOKEN)
    with open(tmp_path / "serve.log", "wb") as log:
        server = start_server("0.0.0.0", port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        for path in ["/api/v1/jobs", f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/predictions",
                     f"/api/v1/jobs/{job_id}/predictions.csv", "/api/v1/predictions/1/thumbnail",
                     "/api/v1/models", "/openapi.json"]:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
                status, _, body = get(base + path, headers)
                assert status == 401 and "/photos" not in body, (path, status, body)
        for path in ["/", f"/jobs/{job_id}", "/models"]:
            status, location, body = get(base + path)
            assert (status, location) == (303, f"/login?next={path}"), (path, status)
            assert "/photos" not in body
        assert get(base + "/login")[0] == 200 and get(base + "/static/style.css")[0] == 200
        status, _, body = get(base + f"/api/v1/jobs/{job_id}", auth())
        assert status == 200 and '"/photos"' in body
    finally:
        server.terminate()
        server.wait(30)


def test_public_reads_are_an_opt_in_said_in_the_log(tmp_path, isolated_env):
    port = free_port()
    env = dict(os.environ, HAPPYSAD_API_TOKEN=TOKEN, HAPPYSAD_PUBLIC_READS="true")
    with open(tmp_path / "serve.log", "wb") as log:
        server = start_server("0.0.0.0", port, env, log)
    try:
        assert get(f"http://127.0.0.1:{port}/api/v1/jobs")[0] == 200
    finally:
        server.terminate()
        server.wait(30)
    assert "HAPPYSAD_PUBLIC_READS is set: anyone who reaches 0.0.0.0" in \
        (tmp_path / "serve.log").read_text()


def test_a_short_token_is_refused():
    env = dict(os.environ, HAPPYSAD_API_TOKEN="12345")
    result = subprocess.run([sys.executable, "-m", "happysad.cli", "serve", "--port", "1"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "invalid HAPPYSAD_API_TOKEN" in result.stderr
    assert "must be at least 16 characters" in result.stderr
    assert "12345" not in result.stderr  # a secret, even a bad one, is not printed
