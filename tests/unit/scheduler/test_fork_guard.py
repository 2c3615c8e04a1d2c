"""A fork of a worker's parent waits for the reconciler's pass (or heartbeat) in progress, and
the child starts with a guard of its own (scheduler.fork_guard)."""

import os
import threading

from scheduler import fork_guard


def test_a_fork_waits_for_the_pass_and_the_child_can_take_the_guard():
    fork_guard.install()
    fork_started, pass_may_end, forked = threading.Event(), threading.Event(), threading.Event()
    events: list[str] = []
    # Registered after the guard's hook, so it runs before it: the fork has begun.
    os.register_at_fork(before=lambda: fork_started.set() if pass_may_end.is_set() else None)
    child_status: list[int] = []

    def reconciler_pass() -> None:
        with fork_guard.no_fork():
            pass_may_end.set()  # from here on, a fork in this test counts
            fork_started.wait()
            # A fork that does not wait would finish now; one that waits cannot: either way
            # this pass then ends, so the order below tells them apart.
            forked.wait(timeout=2)
            events.append("pass ended")

    def fork_a_pool_process() -> None:
        pass_may_end.wait()
        pid = os.fork()
        if pid == 0:  # the child: its guard is free (it would wait for ever on the copy)
            os._exit(0 if fork_guard._guard.acquire(timeout=10) else 1)
        events.append("forked")
        forked.set()
        child_status.append(os.waitpid(pid, 0)[1])

    threads = [threading.Thread(target=reconciler_pass),
               threading.Thread(target=fork_a_pool_process)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert events == ["pass ended", "forked"]
    assert child_status == [0]
