"""Hosts as network namespaces on this machine (`ip netns`), joined by veth links that a test
can cut as a pulled cable would: the processes on both ends live on, their packets go nowhere.

Everything is made inside namespaces of the test's own (each veth is created with both ends
already in their namespaces), so the machine's own network is never touched and two runs at
once can use the same addresses. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
"""

import subprocess


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Namespace:
    """A network namespace with its loopback up; `run_in` prefixes a command to run in it."""

    def __init__(self, name: str):
        self.name = name
        ip("netns", "add", name)
        self.ip("link", "set", "lo", "up")

    @property
    def run_in(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]  # execs the command: its pid stays the same

    def ip(self, *args: str) -> str:
        return ip("-n", self.name, *args)

    def delete(self) -> None:
        """Its veth links go with it; processes still inside keep it alive until they end."""
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def add_link(services: Namespace, services_address: str, host: Namespace, host_address: str,
             interface: str) -> str:
    """A veth pair between `services` and `host` on one /30 (addresses with their prefix), and
    a route on `host` to every address of `services` through it. Returns the interface on the
    services side: the one to cut."""
    services_end, host_end = f"{interface}-s", f"{interface}-h"
    ip("link", "add", services_end, "netns", services.name, "type", "veth",
       "peer", "name", host_end, "netns", host.name)
    for namespace, end, address in ((services, services_end, services_address),
                                    (host, host_end, host_address)):
        namespace.ip("addr", "add", address, "dev", end)
        namespace.ip("link", "set", end, "up")
    host.ip("route", "add", "default", "via", services_address.split("/")[0])
    return services_end


def cut(namespace: Namespace, interface: str) -> None:
    """The link down on this side: the other end loses its carrier, nothing crosses either
    way, and no connection is closed or reset (nobody is told)."""
    namespace.ip("link", "set", interface, "down")
