"""A loopback OpenAI-compatible server with scripted answers, for judge tests and the judge bench.

It serves `GET /v1/models` and `POST /v1/chat/completions` on 127.0.0.1 and a free port, in a
thread. The answer to a chat request is `answer(prompt)` (the last user message's text), so a test
scripts a judge by the request's content. `delay` sleeps before every chat answer (a network's
latency); `failures` is a queue of modes applied to the next chat requests, one each:
`"500"` (an internal server error), `"sleep:<seconds>"` (answer late), `"garbage"` (a non-JSON body).
It counts every request, so a test can assert how many calls a judge made.

    with StubServer(answer=lambda prompt: "[[A]]") as server:
        server.base_url     # http://127.0.0.1:<port>/v1
        server.chat_requests
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Callable


class StubServer:
    def __init__(self, answer: Callable[[str], str] = lambda prompt: "[[A]]", delay: float = 0.0,
                 failures: list[str] | None = None, key: str | None = None) -> None:
        self.answer, self.delay, self.failures, self.key = answer, delay, list(failures or []), key
        self.chat_requests = self.models_requests = 0
        self.prompts: list[str] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_failure(self) -> str | None:
        with self._lock:
            return self.failures.pop(0) if self.failures else None

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    pass

            def _authorised(self) -> bool:
                if server.key is None or self.headers.get("Authorization") == f"Bearer {server.key}":
                    return True
                self._send(401, json.dumps({"error": {"message": "invalid key", "type": "auth"}}).encode())
                return False

            def do_GET(self) -> None:
                with server._lock:
                    server.models_requests += 1
                if not self._authorised():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    body = {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0,
                                                        "owned_by": "stub"}]}
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with server._lock:
                    server.chat_requests += 1
                if not self._authorised():
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                prompt = next((m["content"] for m in reversed(request.get("messages", [])) if m["role"] == "user"), "")
                with server._lock:
                    server.prompts.append(prompt)
                failure = server._next_failure()
                if server.delay:
                    time.sleep(server.delay)
                if failure == "500":
                    self._send(500, b'{"error": {"message": "scripted failure", "type": "server_error"}}')
                    return
                if failure == "garbage":
                    self._send(200, b"not json", "text/plain")
                    return
                if failure and failure.startswith("sleep:"):
                    time.sleep(float(failure.split(":", 1)[1]))
                text = server.answer(prompt)
                body = {"id": f"chatcmpl-{server.chat_requests}", "object": "chat.completion", "created": 0,
                        "model": request.get("model", "stub"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                                  "total_tokens": len(prompt.split()) + len(text.split())}}
                self._send(200, json.dumps(body).encode())

        return Handler
