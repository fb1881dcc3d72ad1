"""Faults we cause for real, for tests: a JSON-RPC proxy in front of a node that can go away and come
back, and can refuse eth_getLogs ranges wider than a limit the way public RPC providers do."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from opml.chain.anvil import free_port


class RpcProxy:
    """`with RpcProxy(node_url) as proxy:` forwards JSON-RPC to the node; `proxy.down()` closes the port
    (clients get connection refused) and `proxy.up()` opens it again on the same port."""

    def __init__(self, target: str, max_log_range: int | None = None):
        self.target = target
        self.max_log_range = max_log_range
        self.port = free_port()
        self.refused_log_ranges = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                refusal = proxy._refusal(json.loads(body))
                if refusal is not None:
                    payload = json.dumps(refusal).encode()
                else:
                    payload = requests.post(
                        proxy.target, data=body, headers={"content-type": "application/json"}
                    ).content
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _refusal(self, call) -> dict | None:
        if self.max_log_range is None or isinstance(call, list) or call.get("method") != "eth_getLogs":
            return None
        query = call["params"][0]
        start, end = query.get("fromBlock"), query.get("toBlock")
        if isinstance(start, str) and isinstance(end, str) and start.startswith("0x") and end.startswith("0x"):
            if int(end, 16) - int(start, 16) + 1 > self.max_log_range:
                self.refused_log_ranges += 1
                return {
                    "jsonrpc": "2.0",
                    "id": call.get("id"),
                    "error": {"code": -32005, "message": "block range too large"},
                }
        return None

    def __enter__(self) -> RpcProxy:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()
