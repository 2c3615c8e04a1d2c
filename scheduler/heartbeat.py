"""Is a worker on another host alive? A worker's pid can be checked only on its own host
(worker.identity.holder_gone). With a broker server every worker's parent also keeps a key alive
in Redis (a beat every HAPPYSAD_RECONCILE_INTERVAL, expiring after NODE_TTL_BEATS of them): a
batch held by a process whose node's key expired (the worker killed, its host down or cut
off) is sent again at once by any reconciler (scheduler.reconcile). A live worker taken for
gone (Redis back from an outage longer than a key's lifetime, before its next beat) costs a
batch done twice, never a row twice: the writes are idempotent.
"""

import threading
import time

from db.settings import Settings
from scheduler import fork_guard

BEAT_TIMEOUT = 1.0  # seconds a heartbeat or a look waits for Redis

NODE_TTL_BEATS = 3
NODE_KEY = "happysad:node-alive:"
# Set once and never expiring: when it is younger than a key's lifetime, Redis lost its data
# (restarted without persistence) and a missing key says nothing about its node.
PRESENCE_SINCE_KEY = "happysad:node-alive-since"


def _redis_client(settings: Settings):
    import redis

    return redis.Redis.from_url(settings.broker_url, socket_timeout=BEAT_TIMEOUT,
                                socket_connect_timeout=BEAT_TIMEOUT)


def node_ttl(settings: Settings) -> int:
    return NODE_TTL_BEATS * settings.reconcile_interval


def mark_node_alive(node: str, settings: Settings) -> None:
    """The heartbeat of the worker named `node` (celery@host), from its parent process."""
    with _redis_client(settings) as client:
        client.set(NODE_KEY + node, "1", ex=node_ttl(settings))
        client.set(PRESENCE_SINCE_KEY, str(time.time()), nx=True)


def forget_node(node: str, settings: Settings) -> None:
    """A worker stopping warmly: its batches are done or given back, nothing to wait for."""
    with _redis_client(settings) as client:
        client.delete(NODE_KEY + node)


def gone_nodes(nodes: set[str], settings: Settings) -> set[str]:
    """Of `nodes`, those whose heartbeat stopped; none when it cannot be told (the embedded
    queue has no other host; Redis is away, or lost its keys less than a key's lifetime ago).
    A node of an older version, which beats not, looks gone: its batches are sent again and,
    the writes being idempotent, written once."""
    if settings.embedded_broker or not nodes:
        return set()
    names = sorted(nodes)
    try:
        with _redis_client(settings) as client:
            since, *alive = client.mget([PRESENCE_SINCE_KEY] + [NODE_KEY + n for n in names])
    except Exception:  # redis' errors: say nothing rather than something false
        return set()
    if since is None or time.time() - float(since) < node_ttl(settings):
        return set()
    return {name for name, beat in zip(names, alive) if beat is None}


class NodeBeat:
    """The heartbeat's timer thread: its own, so a long reconciler pass never delays it. A beat
    keeps the process from forking meanwhile (scheduler.fork_guard)."""

    def __init__(self, node: str, settings: Settings):
        self.node, self.settings, self.stopped = node, settings, threading.Event()
        self.thread = threading.Thread(target=self._run, name="happysad-node-beat", daemon=True)

    def start(self) -> "NodeBeat":
        self.thread.start()
        return self

    def _run(self) -> None:
        interval = self.settings.reconcile_interval
        while True:
            try:
                with fork_guard.no_fork():
                    mark_node_alive(self.node, self.settings)
            except Exception:  # Redis away: the next beat tries again
                pass
            if self.stopped.wait(interval):
                return

    def stop(self) -> None:
        self.stopped.set()
        try:
            forget_node(self.node, self.settings)
        except Exception:
            pass
