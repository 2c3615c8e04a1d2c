"""On the embedded queue, a command that waits for work starts local workers if none runs."""

import contextlib
from collections.abc import Iterator

from db.settings import get_settings
from happysad import output


@contextlib.contextmanager
def local_workers_for(queues: str) -> Iterator[None]:
    """Start a worker on `queues` for the duration, if the queue is embedded and nobody
    consumes it; with a broker server, the operator's workers do the work."""
    from worker import local

    settings = get_settings()
    if not settings.embedded_broker or local.running_workers():
        yield
        return
    concurrency = 1 if queues == "training" else settings.concurrency()
    log_path = settings.home / "logs" / "local-worker.log"
    output.error_console.print(f"no worker running: starting {concurrency} local worker "
                               f"process(es) on {queues} (log: {log_path})", highlight=False)
    process = local.start_local_workers(concurrency, log_path, queues)
    try:
        yield
    finally:
        local.stop_local_workers(process)
