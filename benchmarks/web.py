"""The web app at a million rows: latency of the predictions endpoint and of the job page, on
the first page and on a deep one (keyset), and thumbnail throughput. Not a test.

Fills a PostgreSQL database of its own (`happysad_bench_web`) with one job of N prediction rows
(default 1,000,000, made by generate_series inside the server); the first rows point at real
generated 256 px JPEGs so thumbnails can be made. Starts a real `happysad serve` on a free
loopback port and times sequential HTTP requests from this process: median and p95 in ms (the
job page's label and failure counts of a done job are kept by the web process after its first
view, which is timed on its own).
The same deep page by OFFSET, timed in SQL side by side, shows what keyset paging saves.

    nice -n 10 .venv/bin/python -m benchmarks.web [--rows 1000000] [--repeats 40]
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ADMIN_URL = os.environ.get("HAPPYSAD_TEST_POSTGRES_ADMIN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "happysad_bench_web"
REAL_IMAGES = 400


def fresh_database() -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"


def fill(url: str, rows: int, images: Path) -> None:
    from db.session import get_engine
    from trainer.sample_data import write_sample_dataset

    write_sample_dataset(images, per_class=REAL_IMAGES // 2, image_size=256, seed=0,
                         labelled=False)
    real = sorted(str(path) for path in images.glob("*.jpg"))
    get_engine()  # the schema through the migrations, indexes included
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO model_versions VALUES (1, now(), '/m/v0001/model.keras', repeat('0', 64),"
            " 'improved', '[\"happy\", \"sad\"]', 128, 1, '/d', repeat('f', 64),"
            " '{\"accuracy\": 0.9, \"precision\": 0.9, \"recall\": 0.9}', '{}', true)")
        connection.execute(
            "INSERT INTO jobs (id, source, model_version, status, batch_size, total_images,"
            " batches_total, batches_done, skipped_files, submitted_at, finished_at) VALUES"
            f" (1, %s, 1, 'done', 64, {rows}, {(rows + 63) // 64}, {(rows + 63) // 64}, 0,"
            " now(), now())", (str(images),))
        connection.execute(f"""
            INSERT INTO predictions (job_id, uri, label, confidence, probabilities, error,
                                     model_version, worker_host, created_at)
            SELECT 1, %s || '/bench-' || n || '.jpg',
                   CASE WHEN n %% 100 = 0 THEN NULL WHEN p >= 0.5 THEN 'sad' ELSE 'happy' END,
                   CASE WHEN n %% 100 = 0 THEN NULL ELSE greatest(p, 1 - p) END,
                   CASE WHEN n %% 100 = 0 THEN NULL
                        ELSE json_build_object('happy', 1 - p, 'sad', p) END,
                   CASE WHEN n %% 100 = 0 THEN 'not a recognised image format' END,
                   1, 'bench', now()
            FROM (SELECT n, random() AS p FROM generate_series(1, {rows}) AS n) AS g""",
                           (str(images),))
        # The first rows are the real images (thumbnails need a file to read).
        with connection.cursor() as cursor:
            cursor.executemany("UPDATE predictions SET uri = %s WHERE id = %s",
                               [(uri, index + 1) for index, uri in enumerate(real)])
        connection.execute("VACUUM ANALYZE predictions")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "happysad.cli", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/v1/jobs", timeout=5)
            return server, url
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("happysad serve did not start")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read()


def latency(url: str, repeats: int) -> dict[str, float]:
    get(url)  # warm: the first request of a kind compiles templates, fills caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1)}


def first_view(url: str) -> dict[str, float]:
    """The very first request: the web process has not yet counted this done job's rows."""
    started = time.perf_counter()
    get(url)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return {"median_ms": elapsed, "p95_ms": elapsed}


def deep_cursors(url: str, rows: int) -> dict[str, str]:
    """Cursors for a page 99.9% of the way into the job, in each order."""
    with psycopg.connect(url) as connection:
        by_id = connection.execute("SELECT id FROM predictions WHERE job_id = 1 ORDER BY id"
                                   " OFFSET %s LIMIT 1", (int(rows * 0.999),)).fetchone()[0]
        confidence, row_id = connection.execute(
            "SELECT confidence, id FROM predictions WHERE job_id = 1 AND confidence IS NOT NULL"
            " ORDER BY confidence, id OFFSET %s LIMIT 1", (int(rows * 0.98),)).fetchone()
    return {"id": str(by_id), "uncertain": f"{confidence!r}:{row_id}"}


def offset_page_ms(url: str, rows: int, repeats: int = 5) -> float:
    """The same deep page by OFFSET, in SQL: what keyset paging avoids."""
    with psycopg.connect(url) as connection:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            connection.execute("SELECT * FROM predictions WHERE job_id = 1 ORDER BY id OFFSET %s"
                               " LIMIT 100", (int(rows * 0.999),)).fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def thumbnail_rate(base: str, ids: list[int], clients: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        sizes = list(pool.map(lambda i: len(get(f"{base}/api/v1/predictions/{i}/thumbnail")), ids))
    assert all(size > 1000 for size in sizes)
    return round(len(ids) / (time.perf_counter() - started), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="happysad-bench-web-"))
    url = fresh_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPYSAD_")}
    env |= {"HAPPYSAD_HOME": str(home), "HAPPYSAD_DATABASE_URL": url,
            "HAPPYSAD_LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    started = time.perf_counter()
    fill(url, args.rows, home / "images")
    fill_seconds = time.perf_counter() - started
    cursors = deep_cursors(url, args.rows)
    server, base = start_server(env)
    try:
        api = f"{base}/api/v1/jobs/1/predictions?limit=100"
        page = f"{base}/jobs/1"
        measured = {
            "api first page (id order)": latency(api, args.repeats),
            "api deep page (id order, 99.9%)": latency(f"{api}&cursor={cursors['id']}",
                                                       args.repeats),
            "api first page (uncertain first)": latency(f"{api}&sort=uncertain", args.repeats),
            "api deep page (uncertain first, 98%)": latency(
                f"{api}&sort=uncertain&cursor={cursors['uncertain']}", args.repeats),
            "api label + confidence range": latency(
                f"{api}&label=sad&min_confidence=0.6&max_confidence=0.7", args.repeats),
            "job page, first view (counts every row)": first_view(page),
            "job page first page": latency(page, args.repeats),
            "job page deep page (99.9%)": latency(f"{page}?cursor={cursors['id']}", args.repeats),
            "job page uncertain first": latency(f"{page}?sort=uncertain", args.repeats),
        }
        ids = list(range(1, REAL_IMAGES + 1))
        thumbnails = {"cold (made from the file), 1 client": thumbnail_rate(base, ids[:200], 1),
                      "cold (made from the file), 4 clients": thumbnail_rate(base, ids[200:], 4),
                      "warm (cached), 1 client": thumbnail_rate(base, ids[:200], 1),
                      "warm (cached), 4 clients": thumbnail_rate(base, ids, 4)}
    finally:
        server.terminate()
        server.wait(30)
    report = {"rows": args.rows, "repeats": args.repeats, "fill_seconds": round(fill_seconds, 1),
              "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
              "latency": measured,
              "offset_deep_page_sql_ms": offset_page_ms(url, args.rows),
              "thumbnails_per_second": thumbnails}
    for name, figures in measured.items():
        print(f"{name:42s} median {figures['median_ms']:8.1f} ms   p95 {figures['p95_ms']:8.1f} ms")
    print(f"{'same deep page by OFFSET (SQL only)':42s} median "
          f"{report['offset_deep_page_sql_ms']:8.1f} ms")
    for name, rate in thumbnails.items():
        print(f"thumbnails {name:38s} {rate:8.1f} /s")
    print(json.dumps(report))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
