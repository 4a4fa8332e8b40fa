"""An HTTPS backend that speaks only HTTP/2, as most public APIs do, made with the h2
library mitmproxy itself depends on."""

from __future__ import annotations

import json
import socket
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from support.tls import server_context


class Http2ApiServer:
    """Answers every request 200 with a small JSON body and no CORS headers, over TLS with
    ALPN ``h2`` only; one thread per connection."""

    def __init__(self) -> None:
        self._context = server_context()
        self._context.set_alpn_protocols(["h2"])
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> Http2ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:  # closed: the server stops
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as tls:
                connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
                connection.initiate_connection()
                tls.sendall(connection.data_to_send())
                while data := tls.recv(65536):
                    for event in connection.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            _answer(connection, event)
                    tls.sendall(connection.data_to_send())
        except (OSError, h2.exceptions.H2Error):
            pass  # the client went away


def _answer(connection: h2.connection.H2Connection, event: h2.events.RequestReceived) -> None:
    request = {name.decode(): value.decode() for name, value in event.headers}
    body = json.dumps({"method": request[":method"], "path": request[":path"]}).encode()
    connection.send_headers(event.stream_id, [
        (":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body))), ("x-total", "42"),
    ])
    connection.send_data(event.stream_id, body, end_stream=True)
