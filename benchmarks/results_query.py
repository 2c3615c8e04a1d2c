"""Do `happysad results` queries stay fast at a million rows? Measured, side by side.

Fills a PostgreSQL database of its own (`happysad_bench_results`) with N prediction rows
(default 1,000,000, made by generate_series inside the server) spread over 10 jobs of equal
size, then times the queries the CLI runs against the newest job (first page, a page deep into
the job by keyset, a rare label + min-confidence filter, errors only, per-label counts) with the
project's indexes and again without them (the primary key stays), and prints JSON with the
medians and the ratios.

    .venv/bin/python -m benchmarks.results_query [--rows 1000000]
"""

import argparse
import json
import os
import statistics
import time

import psycopg

ADMIN_URL = os.environ.get("HAPPYSAD_TEST_POSTGRES_ADMIN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "happysad_bench_results"
INDEXES = ["ix_predictions_job_label_confidence", "ix_predictions_job_id_id"]


def fresh_database() -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"


def fill(url: str, rows: int) -> None:
    os.environ["HAPPYSAD_DATABASE_URL"] = url
    from db.session import get_engine

    get_engine()  # creates the schema through the migrations, indexes included
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO model_versions VALUES (1, now(), '/m', repeat('0', 64), 'baseline',"
            " '[\"happy\", \"sad\"]', 256, 1, '/d', repeat('f', 64), '{}', '{}', true)")
        connection.execute("INSERT INTO jobs (id, source, model_version, status, batch_size,"
                           " batches_done, skipped_files, submitted_at) SELECT j, '/photos', 1,"
                           " 'done', 64, 0, 0, now() FROM generate_series(1, 10) AS j")
        connection.execute(f"""
            INSERT INTO predictions (job_id, uri, label, confidence, probabilities, error,
                                     model_version, worker_host, created_at)
            SELECT 1 + (n - 1) * 10 / {rows}, '/photos/img' || n || '.jpg',
                   CASE WHEN n % 50 = 0 THEN NULL WHEN n % 2 = 0 THEN 'happy' ELSE 'sad' END,
                   CASE WHEN n % 50 = 0 THEN NULL ELSE 0.5 + (n % 500) / 1000.0 END,
                   CASE WHEN n % 50 = 0 THEN NULL ELSE '{{"happy": 0.5, "sad": 0.5}}'::json END,
                   CASE WHEN n % 50 = 0 THEN 'not a recognised image format' END,
                   1, 'bench', now()
            FROM generate_series(1, {rows}) AS n""")
        connection.execute("ANALYZE predictions")


def timed(url: str, repeats: int = 5) -> dict[str, float]:
    """Median milliseconds of each query the CLI issues, through the project's query code."""
    from sqlalchemy import func, select

    from db import queries
    from db.session import dispose_engines, session_scope
    from db.tables import Prediction

    dispose_engines()
    job = 10  # the newest job: its rows have the highest ids
    with session_scope() as session:
        deep = session.scalar(select(func.max(Prediction.id))) - 1000
    cases = {
        "first_page": lambda s: s.scalars(queries.predictions_query(job).limit(1000)).all(),
        "deep_page_keyset": lambda s: s.scalars(
            queries.predictions_query(job, after_id=deep).limit(1000)).all(),
        "label_min_confidence": lambda s: s.scalars(
            queries.predictions_query(job, label="sad", min_confidence=0.999).limit(1000)).all(),
        "errors_only": lambda s: s.scalars(
            queries.predictions_query(job, errors_only=True).limit(1000)).all(),
        "label_counts": lambda s: queries.label_counts(s, job),
    }
    results = {}
    for name, query in cases.items():
        samples = []
        for _ in range(repeats):
            with session_scope() as session:
                started = time.perf_counter()
                query(session)
                samples.append((time.perf_counter() - started) * 1000)
        results[name] = round(statistics.median(samples), 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    url = fresh_database()
    fill(url, args.rows)
    with_indexes = timed(url)
    with psycopg.connect(url, autocommit=True) as connection:
        for index in INDEXES:
            connection.execute(f"DROP INDEX {index}")
        connection.execute("ANALYZE predictions")
    without_indexes = timed(url)
    print(json.dumps({
        "rows": args.rows, "median_ms_with_indexes": with_indexes,
        "median_ms_without_indexes": without_indexes,
        "speedup_from_indexes": {name: round(without_indexes[name] / max(ms, 1e-3), 1)
                                 for name, ms in with_indexes.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
