"""Processes the recovery benchmark starts and kills: a private redis-server, a private
PostgreSQL cluster (initdb), real `celery worker` processes and a small tmpfs to fill.

Benchmarks import no test helpers; the tests use these (tests/helpers/faults.py,
postgres_cluster.py) rather than copies of them.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REDIS_PERSISTENCE = {
    "none": ["--save", "", "--appendonly", "no"],
    # docker-compose.yml runs `--appendonly yes`, whose fsync default is everysec.
    "appendonly": ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
}


def wait_for(condition, what: str, timeout: float = 300, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what}: not within {timeout} s")


class Redis:
    def __init__(self, folder: Path, port: int, persistence: str):
        self.folder, self.port = folder, port
        self.arguments = REDIS_PERSISTENCE[persistence]
        folder.mkdir(parents=True, exist_ok=True)
        self.process = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.folder), *self.arguments]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def pings() -> bool:
            try:
                return client.ping()
            except redis.exceptions.RedisError:
                return False
        wait_for(pings, f"redis on port {self.port}", timeout=30)
        client.close()

    def kill(self) -> None:
        """kill -9: no shutdown, no final fsync."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def server_binaries() -> Path:
    """The newest installed PostgreSQL server (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(path.split("/")[4]))
    if not found:
        raise FileNotFoundError("no initdb under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class Postgres:
    """A cluster of the benchmark's own on 127.0.0.1:`port`, run as the postgres user (the
    server refuses root); fsync off: nothing here is about surviving a power cut."""

    def __init__(self, port: int, user: str = "postgres"):
        self.binaries, self.port = server_binaries(), port
        self.as_user = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
        self.folder = Path(tempfile.mkdtemp(prefix="happysad-bench-pg-"))
        self.data = self.folder / "data"
        if self.as_user:
            owner = pwd.getpwnam(user)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as config:
            config.write(f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                         f"unix_socket_directories = '{self.folder}'\nfsync = off\n")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.binaries / program), *args],
                              capture_output=True, text=True, cwd=self.folder)
        if done.returncode:
            raise OSError(f"{program} failed: {done.stderr.strip() or done.stdout.strip()}")


class Worker:
    """A real `celery -A scheduler.worker_app worker` (one process) in its own process group."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name, self.env, self.log_path = name, env, log_dir / f"{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "scheduler.worker_app", "worker",
                   f"--hostname={name}@%h", "--concurrency=1", "--queues=labelling",
                   "--loglevel=INFO", "--without-mingle", "--without-gossip"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> "Worker":
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log_text()[-3000:]}")
            return "ready." in self.log_text()
        wait_for(ready, f"worker {self.name} ready", timeout)
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        """Warm stop, then the whole group (orphaned pool processes too) if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


class SmallDisk:
    """A 2 MB tmpfs (needs root), filled with one file until writes fail."""

    def __init__(self, mount_point: Path, size: str = "2m"):
        self.mount_point = mount_point
        mount_point.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                        str(mount_point)], check=True, capture_output=True)
        self.filler = mount_point / "filler"

    def fill(self) -> None:
        with open(self.filler, "wb", buffering=0) as file:
            try:
                while True:
                    file.write(b"\0" * 4096)
            except OSError:
                pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount_point)], check=False)
