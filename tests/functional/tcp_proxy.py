"""A loopback TCP proxy that can go silent: the connection stays open, nothing is forwarded.

That is what a NAT or a Lambda network interface dropping an idle flow looks
like to a client: no error, no close, just no answer.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from streamcache.local.redis_server import free_port


class SilentProxy:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    def go_silent(self) -> None:
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def start(self) -> SilentProxy:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._forwarding.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in [*self._sockets, self._listener]:
            sock.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        with selectors.DefaultSelector() as sel:
            for sock in peers:
                sel.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not self._forwarding.wait(timeout=0.05):
                    continue  # silent: bytes wait in the kernel, nobody hears them
                for key, _ in sel.select(timeout=0.05):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = sock.recv(65536)
                        if not data:
                            return
                        peers[sock].sendall(data)
                    except OSError:  # either side went away (a test closing it): the pair is done
                        return


@contextmanager
def silent_proxy(target_port: int) -> Iterator[SilentProxy]:
    proxy = SilentProxy(target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
