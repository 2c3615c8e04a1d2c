"""A PostgreSQL cluster of a test's own, made with initdb, for a test that needs the server
somewhere the machine's is not (on an address inside a network namespace).

The server refuses to run as root, so it runs as the `postgres` user (`runuser`). Trust
authentication for the Unix socket and the one network given, nothing else; fsync off, since
nothing here is about surviving a power cut. The folder is short (a Unix socket's path is at
most 107 bytes) and removed on stop.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.fault_services import server_binaries

PORT = 5432  # the cluster's own address or namespace: no other server is on it


class PostgresCluster:
    def __init__(self, listen: str, trusted_network: str, run_in: list[str] = (),
                 user: str = "postgres"):
        self.binaries = server_binaries()
        self.listen, self.run_in = listen, list(run_in)
        self.as_user = ["runuser", "-u", user, "--"]
        self.folder = Path(tempfile.mkdtemp(prefix="happysad-pg-"))
        self.data = self.folder / "data"
        owner = pwd.getpwnam(user)
        os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as config:
            config.write(f"listen_addresses = '{listen}'\nport = {PORT}\n"
                         f"unix_socket_directories = '{self.folder}'\nfsync = off\n")
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {trusted_network} trust\n")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-w", "start", in_namespace=True)

    @property
    def url(self) -> str:
        """Over the network, for processes that can reach `listen`."""
        return f"postgresql://postgres@{self.listen}:{PORT}/postgres"

    @property
    def socket_url(self) -> str:
        """Through the Unix socket, from any network namespace of this machine."""
        return f"postgresql://postgres@/postgres?host={self.folder}&port={PORT}"

    def log_text(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str, in_namespace: bool = False) -> None:
        # Only the server's start needs the namespace: it keeps it for its children.
        command = [*(self.run_in if in_namespace else []), *self.as_user,
                   str(self.binaries / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode:
            raise OSError(f"{program} failed: {done.stderr.strip() or done.stdout.strip()}")
