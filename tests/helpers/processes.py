"""Real processes for tests: celery workers, a private redis-server, a TCP proxy to cut."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.helpers.polling import wait_until
from worker.task_names import LABELLING_QUEUE

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A real `celery -A scheduler.worker_app worker` in its own process group (or `-A` another
    app module that wraps the real one: tests.helpers.poison_app, tests.helpers.paced_app).

    Its processes run the model with TensorFlow unless the test sets HAPPYSAD_ENGINE: "auto"
    (the default) times every runtime against TensorFlow in each new process before its first
    batch, seconds per worker that no fault case here is about (tests/unit/worker/test_engine*
    prove the choice; test_labelling keeps "auto" end to end)."""

    def __init__(self, name: str, concurrency: int = 1, queues: str = LABELLING_QUEUE,
                 env: dict | None = None, log_dir: Path | None = None,
                 app: str = "scheduler.worker_app", run_in: list[str] = ()):
        self.name, self.app = name, app
        log_dir = log_dir or Path(os.environ["HAPPYSAD_HOME"]) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        # run_in: a prefix that execs the worker elsewhere (`ip netns exec NS`), same pid
        command = [*run_in, sys.executable, "-m", "celery", "-A", app, "worker",
                   f"--hostname={name}@%h", f"--concurrency={concurrency}",
                   f"--queues={queues}", "--loglevel=INFO", "--without-mingle",
                   "--without-gossip"]
        env = dict(env or os.environ)
        env.setdefault("HAPPYSAD_ENGINE", "tensorflow")
        if app.startswith("tests."):  # the tests are not installed: import them from the tree
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:  # the worker has its own copy of the handle
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log_path.read_text()}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready:\n{self.log_path.read_text()}")

    def stop(self, timeout: float = 30) -> None:
        from scheduler.workers import stop_local_workers

        # The parent alone: a warm shutdown lets pool processes finish their batch.
        stop_local_workers(self.process, timeout)


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def log_text(worker) -> str:
    return worker.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, on its own port, that the test may restart.

    Append-only with fsync on every write, as docker-compose.yml runs it (appendonly yes): the
    queued batches must survive a restart, which is what a restart test is about.
    """

    def __init__(self, folder: Path, password: str | None = None, host: str = "127.0.0.1",
                 run_in: list[str] = (), unix_socket: Path | None = None):
        self.port = free_port()
        self.folder = folder
        self.password = password
        # Elsewhere than this process's network (run_in `ip netns exec NS`, on an address of
        # that namespace), the test itself reaches it through the Unix socket.
        self.host, self.run_in, self.unix_socket = host, list(run_in), unix_socket
        folder.mkdir(parents=True, exist_ok=True)
        self.process = None
        self.start()

    @property
    def url(self) -> str:
        login = f":{self.password}@" if self.password else ""
        return f"redis://{login}{self.host}:{self.port}/0"

    @property
    def socket_url(self) -> str:
        """The Unix socket as a kombu broker URL (db 0)."""
        return f"redis+socket://{self.unix_socket}"

    def start(self) -> None:
        import redis

        command = [*self.run_in, "redis-server", "--port", str(self.port), "--bind", self.host,
                   "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                   "--dir", str(self.folder)]
        if self.password:
            command += ["--requirepass", self.password]
        elif self.host != "127.0.0.1":  # an address of the test's own namespace, no password:
            command += ["--protected-mode", "no"]  # protected mode would answer only loopback
        if self.unix_socket:
            command += ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
            client = redis.Redis(unix_socket_path=str(self.unix_socket), password=self.password,
                                 socket_connect_timeout=1)
        else:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        with client:
            wait_until(lambda: _pings(client), f"redis on port {self.port}", timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: what `docker restart` sends
            self.process.wait(30)


def _pings(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.exceptions.RedisError:
        return False


class TcpProxy:
    """A TCP relay in front of PostgreSQL that the test can cut and restore, as a network
    partition or a database restart would: open connections break, new ones are refused."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._open = threading.Event()
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR is set
        listener.settimeout(0.1)
        self._open.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        self._open.clear()
        time.sleep(0.3)  # the accept loop sees the flag and closes the listener
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._open.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    upstream = socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._sockets += [client, upstream]
                for source, destination in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(source, destination),
                                     daemon=True).start()


def _pump(source: socket.socket, destination: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            destination.sendall(data)
    with contextlib.suppress(OSError):
        destination.shutdown(socket.SHUT_WR)
