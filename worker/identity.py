"""Who runs a task: the identity recorded in `worker_host` (the Celery node name and the
process id), and, read back, whether the process it names is known to be gone."""

import os
import socket


def worker_identity(node_name: str | None = None) -> str:
    """Who did it, unique per process and host: the Celery node name (celery@host by default)
    and the process id, as recorded in `worker_host`."""
    return f"{node_name or 'celery@' + socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_gone(worker_host: str) -> bool:
    """Whether the process a `worker_identity` names is known to be gone: it ran on this host
    and its pid is dead (a process on another host cannot be told from here)."""
    node, _, pid = worker_host.rpartition(":")
    host = node.partition("@")[2]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not process_alive(int(pid))
