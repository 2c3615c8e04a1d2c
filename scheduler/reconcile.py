"""The reconciler: the job is the source of truth, not the queue.

Every worker (a timer thread in its parent process) and beat run `reconcile_once` every
HAPPYSAD_RECONCILE_INTERVAL seconds, one at a time by a lock. It sends again at once the
batches whose worker process is known to be gone (it ran on this host and its pid is dead, or
on another host whose worker's heartbeat in Redis stopped: scheduler.heartbeat),
and the batches that are neither written nor plausibly in flight (sent more than HAPPYSAD_RESEND_AFTER seconds ago,
not started since, and nothing waiting in the labelling queue that could be them), finishes
jobs whose every batch is written, and resumes listings whose submitter stopped more than
HAPPYSAD_LISTING_DEADLINE seconds ago (a live submitter holds the listing lock: resume_job
leaves its job alone), or at once when it stopped for lack of disk space (or
fails them, with the reason, if the source is gone).
Writes are idempotent, so a batch sent twice is written once.
"""

import logging
import threading
from datetime import timedelta

from db.errors import DiskFull, one_line
from db.locks import RECONCILE_LOCK
from db.queries import outbox
from db.session import Sessions, try_lock
from db.settings import Settings
from db.tables import utc_now
from scheduler import fork_guard
from scheduler.outbox import queued_messages, resend_batch
from scheduler.resume import ResumeError, resume_job
from worker.identity import holder_gone, worker_identity
from worker.task_names import FINISH_JOB_TASK

logger = logging.getLogger(__name__)

RESEND_PER_PASS = 1000  # bounds one pass; the next pass takes the rest
UNSTARTED_GRACE = 10  # seconds from a send to the start it must have had on Redis (see below)


_node_name: str | None = None  # the Celery node running this process's reconciler


def reconcile_once(app, settings: Settings, sessions: Sessions) -> dict:
    """One pass; returns what it did (for logs and tests). Each step is a transaction of its
    own from `sessions`: a pass that fails half-way keeps what it did."""
    now = utc_now()
    done = {"resent": 0, "finished": [], "resumed": [], "failed": []}
    with try_lock(RECONCILE_LOCK) as held:
        if not held:
            return done
        with sessions() as session:
            done["finished"] = outbox.complete_but_unfinished(session)
            stalled = outbox.stalled_listings(
                session, now - timedelta(seconds=settings.listing_deadline))
        for job_id in done["finished"]:
            app.send_task(FINISH_JOB_TASK, args=[job_id])
        done["resent"] = _resend_from_gone_holders(app, settings, sessions)
        if queued_messages(app) == 0:
            # On Redis a worker takes a batch only when a process is free and records its start
            # first (prefetch 1, scheduler.celery_app): with the queue empty, a batch not started
            # UNSTARTED_GRACE seconds after it was sent is lost (Redis restarted without it, or
            # its worker died before starting it). The queue folder keeps a batch waiting
            # reserved behind a running one, so there only HAPPYSAD_RESEND_AFTER tells.
            unstarted_before = (None if settings.embedded_broker
                                else now - timedelta(seconds=min(UNSTARTED_GRACE,
                                                                 settings.resend_after)))
            with sessions() as session:
                lost = outbox.batches_to_resend(
                    session, now - timedelta(seconds=settings.resend_after), RESEND_PER_PASS,
                    unstarted_before=unstarted_before)
            for job_id, batch_index, uris in lost:
                resend_batch(app, sessions, job_id, batch_index, uris)
            done["resent"] += len(lost)
            if lost:
                logger.warning("reconciler: sent %s lost batches again (jobs %s)", len(lost),
                               sorted({job_id for job_id, _, _ in lost}))
    for job_id in stalled:  # outside the reconciler's lock: a listing can take a while
        _resume_stalled(app, sessions, job_id, settings.listing_deadline, done)
    return done


def _resend_from_gone_holders(app, settings: Settings, sessions: Sessions) -> int:
    """Batches whose worker process is known to be gone (killed, its host's worker stopped)
    are sent again now, whatever the queue holds, not after HAPPYSAD_RESEND_AFTER: on this
    host its pid is dead; on another, its node's heartbeat stopped (scheduler.heartbeat)."""
    from scheduler.heartbeat import gone_nodes

    with sessions() as session:
        held = outbox.held_batches(session, RESEND_PER_PASS)
    dead_nodes = gone_nodes({holder.rpartition(":")[0] for _, _, _, holder in held}, settings)
    gone = [(job_id, index, uris, holder) for job_id, index, uris, holder in held
            if holder_gone(holder) or holder.rpartition(":")[0] in dead_nodes]
    for job_id, batch_index, uris, holder in gone:
        resend_batch(app, sessions, job_id, batch_index, uris)
        logger.warning("reconciler: job %s batch %s sent again: its worker %s is gone", job_id,
                       batch_index, holder)
    return len(gone)


def _resume_stalled(app, sessions: Sessions, job_id: int, deadline: int, done: dict) -> None:
    reason = (f"listing stopped for more than {deadline} s (its submitter died?): resumed "
              f"automatically by {worker_identity(_node_name)}")
    try:
        resumed = resume_job(app, sessions, job_id, reason)
    except ResumeError:
        return  # someone is listing it after all, or it ended meanwhile
    except DiskFull as error:  # noted on the job again: the next pass tries again
        logger.warning("job %s: listing not resumed yet: %s", job_id, one_line(error))
        return
    except Exception as error:  # the source is gone or unreadable: the job says so
        why = (str(error).strip().splitlines() or [type(error).__name__])[0]
        with sessions() as session:
            outbox.fail_job(session, job_id, f"listing stopped (its submitter died?) and could "
                            f"not be resumed: {why}")
        logger.error("job %s: listing could not be resumed: %s", job_id, why)
        done["failed"].append(job_id)
        return
    logger.warning("job %s: listing resumed (%s new images)", job_id, resumed.new_images)
    done["resumed"].append(job_id)


class Reconciler(threading.Thread):
    """The timer thread: a pass every HAPPYSAD_RECONCILE_INTERVAL until stopped; a failed pass
    (broker or database away) is logged and tried again next time. A pass keeps the process
    from forking meanwhile (scheduler.fork_guard)."""

    def __init__(self, app, settings: Settings, sessions: Sessions):
        super().__init__(name="happysad-reconciler", daemon=True)
        self.app, self.settings, self.sessions = app, settings, sessions
        self.interval = settings.reconcile_interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with fork_guard.no_fork():
                    reconcile_once(self.app, self.settings, self.sessions)
            except Exception as error:
                logger.warning("reconciler pass failed: %s", str(error).splitlines()[0]
                               if str(error) else type(error).__name__)


_thread: Reconciler | None = None
_node_beat = None  # scheduler.heartbeat.NodeBeat, with a broker server


def start_reconciler(app, settings: Settings, sessions: Sessions,
                     node_name: str | None = None) -> None:
    """The reconciler's thread and, with a broker server, the node's heartbeat (so
    reconcilers on other hosts can tell when this worker is gone). Started by the worker's
    and beat's processes, with their settings and transactions."""
    global _thread, _node_name, _node_beat
    _node_name = node_name
    fork_guard.install()
    if _thread is None or not _thread.is_alive():
        _thread = Reconciler(app, settings, sessions)
        _thread.start()
    if node_name and not settings.embedded_broker and _node_beat is None:
        from scheduler.heartbeat import NodeBeat

        _node_beat = NodeBeat(node_name, settings).start()


def stop_reconciler() -> None:
    global _node_beat
    if _thread is not None:
        _thread.stopped.set()
    if _node_beat is not None:
        _node_beat.stop()
        _node_beat = None
