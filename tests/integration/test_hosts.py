"""Workers on one host record who wrote each row, uniquely per process (they all recorded
`celery@vm`); a bucket is listed page by page (it was listed whole and sorted in memory)."""

import re
import socket

import pytest

from tests.helpers.images import write_images
from tests.helpers.jobs import assert_each_image_once
from tests.helpers.polling import wait_until
from trainer.storage import open_storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_workers_sharing_a_node_name_record_distinct_hosts(tmp_path, postgres, redis_url,
                                                           registered_baseline_model,
                                                           start_worker):
    from tests.helpers.jobs import submit

    uris = write_images(tmp_path / "incoming", 48)
    # Two `celery worker` processes on one machine with the same node name, as two
    # `happysad worker` without --hostname get: celery@<host>.
    concurrencies = (2, 1)
    workers = [start_worker("celery", concurrency=count) for count in concurrencies]
    for worker, count in zip(workers, concurrencies):
        worker.wait_ready()
        # Both write one log (one node name), so "ready." there may be the other's: wait for
        # this one's own pool processes.
        wait_until(lambda: len(worker.children()) == count, f"{count} pool processes")
    children = {pid for worker in workers for pid in worker.children()}
    rows = assert_each_image_once(submit(str(tmp_path / "incoming"), batch_size=2).job_id,
                                  uris)
    hosts = {row.worker_host for row in rows.values()}
    node = f"celery@{socket.gethostname()}"
    for host in hosts:
        assert re.fullmatch(re.escape(node) + r":\d+", host), host
        assert int(host.rsplit(":", 1)[1]) in children  # the process that wrote it
    print(f"\nworker_host values: {sorted(hosts)}")


def test_a_bucket_is_listed_page_by_page(moto_bucket):  # noqa: F811
    for index in range(25):
        moto_bucket.put_object(Bucket="photos", Key=f"incoming/{index:02d}.jpg", Body=b"x")
    moto_bucket.put_object(Bucket="photos", Key="incoming-other/00.jpg", Body=b"x")
    storage = open_storage("s3://photos/incoming")
    storage.page_size = 10
    pages = []
    original = storage._list_page

    def counting(*args):
        pages.append(args)
        return original(*args)

    storage._list_page = counting
    listing = storage.iter_files()
    first = next(listing)
    assert first.uri == "s3://photos/incoming/00.jpg" and len(pages) == 1  # one page so far
    rest = [item.uri for item in listing]
    assert [first.uri, *rest] == [f"s3://photos/incoming/{i:02d}.jpg" for i in range(25)]
    assert len(pages) == 3  # 10 + 10 + 5, the sibling prefix not included


def test_a_node_is_gone_once_its_heartbeat_stops_and_redis_can_tell(redis_url, monkeypatch):
    """Workers on another host are known gone by their heartbeat in Redis: a node that beats
    is alive, one that stopped beating is gone, and nothing is said while Redis cannot tell
    (its keys lost less than a key's lifetime ago)."""
    import redis

    from db.settings import get_settings, reset_settings
    from scheduler.heartbeat import PRESENCE_SINCE_KEY, forget_node, gone_nodes, mark_node_alive

    monkeypatch.setenv("HAPPYSAD_RECONCILE_INTERVAL", "1")  # keys live 3 s
    reset_settings()
    settings = get_settings()
    mark_node_alive("alive@b", settings)
    mark_node_alive("stopped@c", settings)
    forget_node("stopped@c", settings)
    nodes = {"alive@b", "stopped@c", "never@d"}
    assert gone_nodes(nodes, settings) == set()  # the beats began just now: Redis cannot tell yet
    client = redis.Redis.from_url(redis_url)
    client.set(PRESENCE_SINCE_KEY, "0")  # as if beating for long
    assert gone_nodes(nodes, settings) == {"stopped@c", "never@d"}
    wait_until(lambda: gone_nodes({"alive@b"}, settings) == {"alive@b"},
               "the unrenewed key to expire", timeout=30, poll=0.5)
    client.flushdb()  # Redis restarted without its data: the beats start again
    mark_node_alive("alive@b", settings)
    assert gone_nodes(nodes, settings) == set()
