"""A FAKE OpenAI-compatible HTTP server standing in for vLLM in tests (no model, standard library only).

It is NOT vLLM: it answers with scripted text. It imitates the parts of ``vllm serve`` that
:class:`actial_ros.backends.vllm.VllmBackend` relies on:

* ``POST /v1/chat/completions``: checks ``Authorization: Bearer <key>`` (401 ``{"error": "Unauthorized"}``
  like vLLM's ``--api-key`` middleware) and the model name (404 with vLLM's error body
  ``The model `x` does not exist.``), records the JSON body, and replies with a ``chat.completion``.
* ``GET /v1/models``: the served model list.

Knobs (thread-safe, set them between requests): :attr:`reply` (text, or a callable of the request body),
:attr:`delay_s` (sleep before replying, e.g. longer than the client timeout), :attr:`stream_interval_s`
(between the chunks of a ``stream: true`` reply, sent as server-sent events like vLLM's), :meth:`fail_next`
(return an HTTP status ``n`` times, then succeed), :meth:`stop` / :meth:`start` (server down / up
again on the SAME port). It also measures the most requests it handled at the same time
(:attr:`max_concurrent`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ['FakeOpenAIServer']

Reply = str | Callable[[dict[str, Any]], str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out close the socket before the delayed reply: not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so a stopped server really is down for every client
    # (no kept-alive connection is served by a left-over handler thread).
    protocol_version = 'HTTP/1.0'

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send_json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, fake: FakeOpenAIServer, body: dict[str, Any], text: str) -> None:
        """``stream: true``: the reply as server-sent events, a few characters per ``chat.completion.chunk``
        (as vLLM streams), then a usage chunk when ``stream_options.include_usage``, then ``[DONE]``."""
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.end_headers()
        base = {'id': f'chatcmpl-fake-{len(fake.requests)}', 'object': 'chat.completion.chunk', 'model': fake.model}
        pieces = [text[k : k + 4] for k in range(0, len(text), 4)] or ['']
        for k, piece in enumerate(pieces):
            delta = {'role': 'assistant', 'content': piece} if k == 0 else {'content': piece}
            finish = 'stop' if k == len(pieces) - 1 else None
            chunk = {
                **base,
                'created': int(time.time()),
                'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}],
            }
            self.wfile.write(f'data: {json.dumps(chunk)}\n\n'.encode())
            self.wfile.flush()
            time.sleep(fake.stream_interval_s)
        if (body.get('stream_options') or {}).get('include_usage'):
            usage = {'prompt_tokens': 100, 'completion_tokens': len(pieces), 'total_tokens': 100 + len(pieces)}
            chunk = {**base, 'created': int(time.time()), 'choices': [], 'usage': usage}
            self.wfile.write(f'data: {json.dumps(chunk)}\n\n'.encode())
        self.wfile.write(b'data: [DONE]\n\n')
        self.wfile.flush()

    def _authorised(self) -> bool:
        fake = self.server.fake
        if self.headers.get('Authorization', '') != f'Bearer {fake.api_key}':
            self._send_json(401, {'error': 'Unauthorized'})
            return False
        return True

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path.rstrip('/') != '/v1/models':
            self._send_json(404, {'detail': 'Not Found'})
            return
        if not self._authorised():
            return
        with fake.lock:
            fake.models_requests += 1
        self._send_json(
            200,
            {
                'object': 'list',
                'data': [{'id': fake.model, 'object': 'model', 'created': 0, 'owned_by': 'vllm'}],
            },
        )

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get('Content-Length', '0'))
        raw = self.rfile.read(length)
        if self.path.rstrip('/') != '/v1/chat/completions':
            self._send_json(404, {'detail': 'Not Found'})
            return
        if not self._authorised():
            return
        body: dict[str, Any] = json.loads(raw)
        with fake.lock:
            fake.requests.append(body)
            fake.active += 1
            fake.max_concurrent = max(fake.max_concurrent, fake.active)
            fail_status = None
            if fake.failures_left > 0:
                fake.failures_left -= 1
                fail_status = fake.fail_status
            delay = fake.delay_s
            reply = fake.reply
        try:
            if delay > 0 and fake.stopping.wait(delay):
                return  # stopped while delaying: drop the connection without a reply
            if fail_status is not None:
                self._send_json(
                    fail_status,
                    {
                        'object': 'error',
                        'message': 'scripted failure',
                        'type': 'InternalServerError',
                        'param': None,
                        'code': fail_status,
                    },
                )
                return
            if body.get('model') != fake.model:
                self._send_json(
                    404,
                    {
                        'object': 'error',
                        'message': f'The model `{body.get("model")}` does not exist.',
                        'type': 'NotFoundError',
                        'param': None,
                        'code': 404,
                    },
                )
                return
            text = reply(body) if callable(reply) else reply
            if body.get('stream'):
                self._send_stream(fake, body, text)
                return
            self._send_json(
                200,
                {
                    'id': f'chatcmpl-fake-{len(fake.requests)}',
                    'object': 'chat.completion',
                    'created': int(time.time()),
                    'model': fake.model,
                    'choices': [
                        {
                            'index': 0,
                            'message': {'role': 'assistant', 'content': text},
                            'finish_reason': 'stop',
                        }
                    ],
                    'usage': {'prompt_tokens': 100, 'completion_tokens': 7, 'total_tokens': 107},
                },
            )
        finally:
            with fake.lock:
                fake.active -= 1


class FakeOpenAIServer:
    """The fake (see the module docstring). Use :meth:`start`, :meth:`stop`, or ``with`` it.

    Args:
        api_key: the bearer key it accepts.
        model: the model name it serves.
        host: interface to bind (loopback).
        port: 0 picks a free port on the first :meth:`start`; later starts reuse it.
    """

    def __init__(
        self, *, api_key: str = 'test-key', model: str = 'fake-actial', host: str = '127.0.0.1', port: int = 0
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.host = host
        self.port = port
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.models_requests = 0
        self.reply: Reply = '<think>fake</think> <answer>A</answer>'
        self.delay_s = 0.0
        self.stream_interval_s = 0.01
        self.failures_left = 0
        self.fail_status = 500
        self.active = 0
        self.max_concurrent = 0
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``."""
        return f'http://{self.host}:{self.port}/v1'

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` chat requests with HTTP ``status``, then succeed again."""
        with self.lock:
            self.failures_left = count
            self.fail_status = status

    def start(self) -> FakeOpenAIServer:
        """Start serving (on the same port as before after a :meth:`stop`)."""
        if self._server is not None:
            return self
        self.stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={'poll_interval': 0.05},
            name='fake-openai-server',
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (delayed requests get no reply). Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
