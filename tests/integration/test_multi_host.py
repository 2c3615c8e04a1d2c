"""Three hosts on this machine as network namespaces: a services host (a private Redis and a
private PostgreSQL cluster) and two worker hosts, each running a real `celery worker`. Host A's
link is cut mid-job, a pulled cable: its worker lives on, holding batches nobody will hear of
again. The job must finish on host B with every image's row exactly once.

Addresses are in 198.18.0.0/15 (RFC 2544, set aside for benchmark networks), inside the test's
own namespaces only: the services host answers on 198.18.0.1 (on its loopback), reached from
host A over the veth link 198.18.1.0/30 and from host B over 198.18.2.0/30; each worker host's
default route is its link, and the services host forwards nothing. The test process stays in
the machine's own namespace and reaches the servers through their Unix sockets. The images and
the model files are on this machine's filesystem, shared by the hosts as a network volume or
a bucket would be; only the database and the broker go over the links.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from db.locks import RECONCILE_LOCK
from db.session import try_lock
from db.settings import reset_settings
from tests.helpers.faults import report_rows
from tests.helpers.images import write_images
from tests.helpers.jobs import assert_each_image_once, batches_written
from tests.helpers.netns import Namespace, add_link, cut
from tests.helpers.paced_app import APP as PACED_APP, BATCH_SECONDS
from tests.helpers.polling import wait_until
from tests.helpers.processes import RedisServer, WorkerProcess
from tests.helpers.services import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES_ADDRESS = "198.18.0.1"
BATCH_SIZE = 4
LINKS = {"host-a": ("198.18.1.1/30", "198.18.1.2/30"), "host-b": ("198.18.2.1/30", "198.18.2.2/30")}


class Hosts:
    """The namespaces, servers and workers of one test, torn down in reverse order."""

    def __init__(self, stack: contextlib.ExitStack, tmp_path):
        from tests.helpers.postgres_cluster import PostgresCluster

        prefix = f"happysad-{os.getpid()}"  # unique per run: another run may be going on
        try:
            self.services = Namespace(f"{prefix}-services")
        except OSError as error:
            unavailable("network namespaces (ip netns)", error)
        stack.callback(self.services.delete)
        self.services.ip("addr", "add", f"{SERVICES_ADDRESS}/32", "dev", "lo")
        self.hosts, self.links = {}, {}
        for index, (name, (services_end, host_end)) in enumerate(LINKS.items()):
            self.hosts[name] = Namespace(f"{prefix}-{name}")
            stack.callback(self.hosts[name].delete)
            self.links[name] = add_link(self.services, services_end, self.hosts[name], host_end,
                                        f"link{index}")
        self.redis = RedisServer(tmp_path / "redis", host=SERVICES_ADDRESS,
                                 run_in=self.services.run_in,
                                 unix_socket=tmp_path / "redis" / "redis.sock")
        stack.callback(self.redis.stop)
        try:
            self.postgres = PostgresCluster(SERVICES_ADDRESS, "198.18.0.0/15",
                                            run_in=self.services.run_in)
        except (OSError, KeyError) as error:  # no server installed, or no `postgres` user
            unavailable("a PostgreSQL server to run (initdb)", error)
        stack.callback(self.postgres.stop)
        self.workers: dict[str, WorkerProcess] = {}
        self.cut_hosts: set[str] = set()
        stack.callback(self._stop_workers)

    def start_worker(self, host: str) -> WorkerProcess:
        """A worker on `host`, its broker and database over the host's link, each batch held a
        second (tests.helpers.paced_app): however late one host's first batch comes on a busy
        machine, the other cannot have done the whole job by then."""
        env = dict(os.environ, HAPPYSAD_BROKER_URL=self.redis.url,
                   HAPPYSAD_DATABASE_URL=self.postgres.url, **{BATCH_SECONDS: "1"})
        self.workers[host] = WorkerProcess(host, concurrency=1, env=env, app=PACED_APP,
                                           run_in=self.hosts[host].run_in)
        return self.workers[host]

    def cut(self, host: str) -> None:
        cut(self.services, self.links[host])
        self.cut_hosts.add(host)

    def _stop_workers(self) -> None:
        for host, worker in self.workers.items():
            if host in self.cut_hosts and worker.process.poll() is None:
                # Its warm shutdown would wait for a batch whose database is out of reach.
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
            worker.stop()


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    with contextlib.ExitStack() as stack:
        hosts = Hosts(stack, tmp_path)
        # This process (submit, checks) is on none of the links: the Unix sockets.
        monkeypatch.setenv("HAPPYSAD_BROKER_URL", hosts.redis.socket_url)
        monkeypatch.setenv("HAPPYSAD_DATABASE_URL", hosts.postgres.socket_url)
        reset_settings()
        yield hosts


def started_not_written(job_id: int, host: str) -> list[int]:
    """The job's batches whose latest attempt is `host`'s and which are not written yet."""
    from sqlalchemy import select

    from db.session import session_scope
    from db.tables import JobBatch

    with session_scope() as session:
        return list(session.scalars(select(JobBatch.batch_index).where(
            JobBatch.job_id == job_id, JobBatch.finished_at.is_(None),
            JobBatch.worker_host.startswith(host + "@"))))


def test_a_worker_host_cut_off_mid_job_the_other_finishes_it(tmp_path, monkeypatch, hosts,
                                                             tiny_baseline_training):
    from db.session import session_scope
    from db.settings import get_settings
    from tests.helpers.jobs import submit
    from trainer.registry import register

    # The visibility timeout stays at its default (3600 s): what host A held when it was cut
    # stays unacknowledged in Redis, and the reconciler (on host B) must send it again.
    monkeypatch.setenv("HAPPYSAD_RESEND_AFTER", "10")
    monkeypatch.setenv("HAPPYSAD_RECONCILE_INTERVAL", "2")
    reset_settings()
    register(tiny_baseline_training, promote="always", settings=get_settings(),
             sessions=session_scope)
    uris = write_images(tmp_path / "incoming", 300)
    batch_count = -(-len(uris) // BATCH_SIZE)
    for host in LINKS:
        hosts.start_worker(host)
    for worker in hosts.workers.values():
        worker.wait_ready()
    job_id = submit(str(tmp_path / "incoming"), batch_size=BATCH_SIZE).job_id

    def written_by(host: str) -> list[str]:
        return [name for name in batches_written(job_id).values() if name.startswith(host + "@")]

    wait_until(lambda: len(written_by("host-a")) >= 2, "host A to write two batches",
               timeout=300)
    hosts.cut("host-a")
    cut_at, cut_clock = time.monotonic(), datetime.now(UTC)
    written_at_cut = len(batches_written(job_id))
    held_by_a = started_not_written(job_id, "host-a")
    assert written_at_cut < batch_count  # mid-job: most batches were still to do

    rows = assert_each_image_once(job_id, uris, timeout=300)
    done_at = time.monotonic()
    per_host = Counter(row.worker_host.split("@")[0] for row in rows.values())
    figures = report_rows("multi-host: worker host A's link cut", job_id, uris, cut_at, done_at,
                          batches=batch_count, batches_written_at_cut=written_at_cut,
                          rows_per_host=dict(sorted(per_host.items())))
    assert figures["written"] == figures["distinct"] == len(uris)
    assert all(row.error is None for row in rows.values())  # a cut is not the images' fault
    assert set(per_host) == {"host-a", "host-b"}  # A wrote before the cut, B after
    # Nothing of host A's was written after the cut (each row is stamped as it is written).
    assert all(row.created_at < cut_clock for row in rows.values()
               if row.worker_host.startswith("host-a@"))
    # What A held when it was cut came back through the reconciler. A cut can also fall between
    # two of A's batches (it had written one and not yet taken the next): nothing to send again.
    if held_by_a:
        assert figures["batches_resent"] > 0


HOLD_RECONCILER_LOCK = """
import time
from db.locks import RECONCILE_LOCK
from db.session import try_lock
with try_lock(RECONCILE_LOCK) as held:
    print(held, flush=True)
    time.sleep(3600)
"""


def test_a_cut_off_host_loses_its_locks_so_the_others_go_on(hosts):
    """A worker cut off while its reconciler held the lock (or while a batch write held the
    job row) would block every other worker for the kernel's keepalive, 2 h: the server drops
    its sessions within about a minute (db.session.SERVER_SIDE_TIMEOUTS)."""
    holder = subprocess.Popen([*hosts.hosts["host-a"].run_in, sys.executable, "-c",
                               HOLD_RECONCILER_LOCK], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, HAPPYSAD_DATABASE_URL=hosts.postgres.url))
    try:
        assert holder.stdout.readline().strip() == "True"
        with try_lock(RECONCILE_LOCK) as held:
            assert not held  # host A has it
        hosts.cut("host-a")
        cut_at = time.monotonic()

        def free() -> bool:
            with try_lock(RECONCILE_LOCK) as held:
                return held

        wait_until(free, "the server to drop the cut-off host's session", timeout=300, poll=1)
        print(f"\nmulti-host: the reconciler lock of cut-off host A came free "
              f"{time.monotonic() - cut_at:.1f} s after the cut")
    finally:
        holder.kill()
        holder.wait()
