"""The live viewer: one local port serves the page (HTTP) and a WebSocket stream of JSON messages (websockets).

`ViewerServer.publish(result, cameras)` is called from the tracking loop; the server keeps only the newest frame and
sends it to every connected page at most `rate_hz` times a second, so a slow browser never holds the tracker up.
A message (`"type": "frame"`) carries `frame`, `timestamp` (s), `fps` (published frames per second over the last
2 s), `latency_ms`, `held`, `expressions` ({name: value}, the 53 egoface names), `gaze` ([[yaw, pitch] x 2] deg),
`confidence` ({region: value}), `failures`, `rejected` (the inbound counters below), and, at most `face_hz` /
`camera_hz` times a second, `face` (a JPEG data URL of the face rendered frontally with the current expressions and
gaze: the default face model, `egoface.render`, in a child process at low CPU priority (nice 10) so that rendering never
delays the tracker) and `cameras` ({name: JPEG data URL} thumbnails of the inputs).

Inbound messages are JSON objects `{"type": "command", "command": NAME}` (NAME in `osc.COMMANDS`, passed to
`on_command`) or `{"type": "ping"}`. Anything else is rejected with an `{"type": "error"}` reply and counted by reason
in `rejected`: `binary`, `oversized` (over `max_message_bytes`; frames over 64 KiB close the connection with code
1009 and are counted too), `malformed` (not a JSON object), `unknown` (type or command), `failed` (the command
raised), `unauthorized` (wrong token on the page or the WebSocket). Nothing a client sends can stop the server.

Security: the server binds 127.0.0.1 by default. Any other address needs `allow_remote=True` and a token of at least
16 characters, which the page and the WebSocket must present as `?token=...` (the page passes its own on). Other
sites' pages open in the user's browser cannot use the stream: a WebSocket whose `Origin` is not the viewer's own is
refused, and without `allow_remote` so is any request whose `Host` is not a loopback name (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hmac
import io
import ipaddress
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numba
import numpy as np
import torch
from PIL import Image
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from egoface.face import shared_face_model, surface_reflectance
from egoface.face.appearance import Appearance
from egoface.render.scene import Mesh, frontal_camera, render_view
from egoface.render.sheets import studio_lights, tone_map
from egoface.runtime.osc import COMMANDS
from egoface.runtime.result import TrackResult

__all__ = ["LiveFace", "ViewerOptions", "ViewerServer", "is_loopback"]

_PAGES = {"/": "index.html", "/index.html": "index.html", "/viewer.js": "viewer.js", "/viewer.css": "viewer.css"}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_PROTOCOL_MAX_BYTES = 64 * 1024  # frames above this close the connection (code 1009)
_FPS_WINDOW_S = 2.0


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ViewerOptions:
    """host/port to listen on (port 0: a free port); allow_remote and token: required for a non-loopback host;
    rate_hz: stream messages per second; face_hz / camera_hz: face renders / camera thumbnails per second (0: none);
    thumbnail_px: camera thumbnail size; face_px: face render size; max_message_bytes: inbound message limit."""

    host: str = "127.0.0.1"
    port: int = 8765
    allow_remote: bool = False
    token: str | None = None
    rate_hz: float = 30.0
    face_hz: float = 8.0
    camera_hz: float = 5.0
    thumbnail_px: int = 160
    face_px: int = 200
    max_message_bytes: int = 4096

    def __post_init__(self) -> None:
        if not is_loopback(self.host):
            if not self.allow_remote:
                raise ValueError(
                    f"viewer host {self.host!r} is not loopback: listening on another interface needs the explicit "
                    "allow-remote flag (--viewer-allow-remote) and a token (--viewer-token)"
                )
            if not self.token or len(self.token) < 16:
                raise ValueError(
                    f"viewer host {self.host!r} is not loopback: it needs a token of 16 characters or more"
                )
        if self.rate_hz <= 0 or self.face_hz < 0 or self.camera_hz < 0:
            raise ValueError(f"viewer rates must be rate_hz > 0, face_hz >= 0, camera_hz >= 0, got {self}")
        if not (16 <= self.face_px <= 1024 and 16 <= self.thumbnail_px <= 1024):
            raise ValueError(f"viewer face_px and thumbnail_px must be 16..1024 pixels, got {self}")


class LiveFace:
    """Frontal, studio-lit renders of the default face model driven by expressions and gaze. size: pixels.

    Loading the face model takes about 2 s; a render 20-60 ms on a 2-core CPU.
    """

    def __init__(self, size: int, model: str = "procedural") -> None:
        face_model = shared_face_model(model)
        self.rig = face_model.rig()
        reflectance = surface_reflectance(face_model, Appearance())
        self.albedo, self.specular = reflectance.albedo, reflectance.specular
        self.camera = frontal_camera(size, size, distance_mm=380.0)
        self.lights = studio_lights(self.camera)
        self.exposure: float | None = None

    def render(self, expression: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        """expression (53,) in [0, 1], gaze (2, 2) deg -> (size, size) uint8."""
        with torch.no_grad():
            vertices = self.rig(
                torch.from_numpy(np.asarray(expression, np.float32)[None]),
                torch.from_numpy(np.asarray(gaze, np.float32)[None]),
            ).vertices[0]
        mesh = Mesh(vertices.numpy(), self.rig.triangles, self.albedo, self.specular)
        radiance = render_view(mesh, self.camera, self.lights)
        if self.exposure is None:  # fixed after the first frame, so that brightness changes mean something
            self.exposure = 0.9 / float(np.percentile(radiance[radiance > 0], 99.5))
        return tone_map(radiance, self.exposure)


def _jpeg(image: np.ndarray, size: int | None = None) -> bytes:
    """(H, W) or (1, H, W) / (H, W, 1) uint8 -> JPEG bytes, resized to fit `size` if given."""
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8).squeeze())
    if size is not None:
        picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


_FACE_REQUEST = struct.Struct("<57f")  # expression (53) then gaze (2, 2) row-major
_FACE_REPLY = struct.Struct(">cI")  # kind (b"R" ready, b"F" face JPEG, b"E" error text), payload length


def _face_worker(size: int) -> None:
    """The face renderer's process (`python -m egoface.runtime.server --face-worker SIZE`): low CPU priority (nice
    10) and one thread, so that rendering (numba and torch would use every core) never delays the tracker. Reads
    `_FACE_REQUEST`s on stdin until it closes; answers each with a `_FACE_REPLY` and its payload on stdout."""
    os.nice(10)
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer

    def reply(kind: bytes, payload: bytes) -> None:
        replies.write(_FACE_REPLY.pack(kind, len(payload)) + payload)
        replies.flush()

    try:
        face = LiveFace(size)
    except Exception as error:  # reported to the page, which then shows the stream without the face
        reply(b"E", f"{type(error).__name__}: {error}".encode())
        return
    reply(b"R", b"")
    while len(request := requests.read(_FACE_REQUEST.size)) == _FACE_REQUEST.size:
        values = np.array(_FACE_REQUEST.unpack(request), dtype=np.float32)
        try:
            reply(b"F", _jpeg(face.render(values[:53], values[53:].reshape(2, 2))))
        except Exception as error:
            reply(b"E", f"{type(error).__name__}: {error}".encode())


class _FaceProcess:
    """A `_face_worker` child process (a plain subprocess: nothing of the caller's main module is re-run) and its
    pipes; `wait_ready` and `render` block, so call them off the event loop."""

    def __init__(self, size: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "egoface.runtime.server", "--face-worker", str(size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def _reply(self) -> tuple[bytes, bytes]:
        assert self.process.stdout is not None
        header = self.process.stdout.read(_FACE_REPLY.size)
        if len(header) < _FACE_REPLY.size:
            raise RuntimeError(f"the face renderer exited (status {self.process.poll()})")
        kind, length = _FACE_REPLY.unpack(header)
        return kind, self.process.stdout.read(length)

    def wait_ready(self) -> _FaceProcess:
        """Until the face model is loaded (a few seconds); raises RuntimeError with the child's error."""
        kind, payload = self._reply()
        if kind != b"R":
            raise RuntimeError(payload.decode(errors="replace"))
        return self

    def render(self, expression: np.ndarray, gaze: np.ndarray) -> str:
        """A JPEG data URL of the face with `expression` (53,) and `gaze` (2, 2) deg."""
        assert self.process.stdin is not None
        values = np.concatenate([np.ravel(expression), np.ravel(gaze)]).astype(np.float32)
        self.process.stdin.write(_FACE_REQUEST.pack(*values.tolist()))
        self.process.stdin.flush()
        kind, payload = self._reply()
        if kind != b"F":
            raise RuntimeError(payload.decode(errors="replace"))
        return _data_url(payload)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()  # the worker's loop ends at end of input
        try:
            self.process.wait(timeout=3.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=3.0)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class _Latest:
    """The newest published frame and the rate bookkeeping, guarded by a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    result: TrackResult | None = None
    cameras: dict[str, np.ndarray] = field(default_factory=dict)
    sequence: int = 0
    times: collections.deque[float] = field(default_factory=collections.deque)


class ViewerServer:
    """The page and the WebSocket stream on one port, served from a background thread. A context manager.

    on_command: called (on the server thread) with each accepted command name. `url`: the page's address (with the
    token). Counters: `rejected` by reason, `messages_sent`, `clients` (connected now).
    """

    def __init__(self, options: ViewerOptions, on_command: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.on_command = on_command
        self.rejected: dict[str, int] = dict.fromkeys(
            ("binary", "oversized", "malformed", "unknown", "failed", "unauthorized"), 0
        )
        self.messages_sent = 0
        self._latest = _Latest()
        self._clients: set[ServerConnection] = set()
        self._face: _FaceProcess | None = None  # ready to render
        self._face_loading: asyncio.Task[_FaceProcess] | None = None
        self.face_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="egoface-viewer", daemon=True)
        self.port = options.port

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> ViewerServer:
        """Bind and start serving; raises if the port cannot be bound."""
        self._thread.start()
        self._ready.wait(timeout=30.0)
        if self._error is not None:
            raise OSError(f"viewer could not listen on {self.options.host}:{self.options.port}: {self._error}")
        return self

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def url(self) -> str:
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        token = f"?token={self.options.token}" if self.options.token else ""
        return f"http://{host}:{self.port}/{token}"

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5.0)

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- called by the tracking loop -------------------------------------------------------------------------

    def publish(self, result: TrackResult, cameras: Mapping[str, np.ndarray] | None = None) -> None:
        """Make `result` (and the camera images it came from, name -> (H, W) uint8 or None) the newest frame. Cheap:
        the encoding and sending happen on the server thread."""
        now = time.monotonic()
        latest = self._latest
        with latest.lock:
            latest.result = result
            if cameras is not None:  # a camera that gave no frame (None) keeps its last thumbnail
                latest.cameras = {name: image for name, image in cameras.items() if image is not None}
            latest.sequence += 1
            latest.times.append(now)
            while latest.times and now - latest.times[0] > _FPS_WINDOW_S:
                latest.times.popleft()

    # --- server thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported by start(); the thread must not die silently
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handle,
            self.options.host,
            self.options.port,
            process_request=self._process_request,
            max_size=_PROTOCOL_MAX_BYTES,
            ping_interval=None,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            face = _FaceProcess(self.options.face_px) if self.options.face_hz > 0 else None
            if face is not None:  # the face model loads while the first pages connect
                self._face_loading = asyncio.create_task(asyncio.to_thread(face.wait_ready))
            sender = asyncio.create_task(self._send_loop())
            try:
                await self._stop.wait()
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                if face is not None:
                    face.close()

    def _token_ok(self, path: str) -> bool:
        if not self.options.token:
            return True
        given = parse_qs(urlsplit(path).query).get("token", [""])[0]
        return hmac.compare_digest(given.encode(), self.options.token.encode())

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve the page and its files over plain HTTP; let `/ws` through to the WebSocket handshake."""
        route = urlsplit(request.path).path
        host = request.headers.get("Host", "")
        if not self.options.allow_remote and not is_loopback(urlsplit(f"//{host}").hostname or ""):
            self.rejected["unauthorized"] += 1  # a page of another site reaching us by DNS rebinding
            return connection.respond(403, "the viewer answers to 127.0.0.1 / localhost only\n")
        if route == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != host:
                self.rejected["unauthorized"] += 1  # another site's page in the user's browser
                return connection.respond(403, "cross-origin WebSocket refused\n")
            if not self._token_ok(request.path):
                self.rejected["unauthorized"] += 1
                return connection.respond(403, "wrong or missing token\n")
            return None
        if route not in _PAGES:
            return connection.respond(404, "not found\n")
        if route in ("/", "/index.html") and not self._token_ok(request.path):
            self.rejected["unauthorized"] += 1
            return connection.respond(403, "wrong or missing token: open the address printed by egoface track\n")
        name = _PAGES[route]
        body = resources.files("egoface.runtime").joinpath("viewer", name).read_bytes()
        headers = Headers(
            [
                ("Content-Type", _TYPES[name[name.rindex(".") :]]),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
            ]
        )
        return Response(200, "OK", headers, body)

    async def _handle(self, connection: ServerConnection) -> None:
        self._clients.add(connection)
        try:
            commands = list(COMMANDS) if self.on_command is not None else []
            await connection.send(json.dumps({"type": "hello", "commands": commands}))
            async for message in connection:
                reply = self._receive(message)
                if reply is not None:
                    await connection.send(json.dumps(reply))
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009:
                self.rejected["oversized"] += 1  # the protocol limit closed the connection
        finally:
            self._clients.discard(connection)

    def _receive(self, message: str | bytes) -> dict[str, Any] | None:
        """Check and run one inbound message; returns the reply (None for nothing to say)."""
        if isinstance(message, bytes):
            return self._reject("binary", "binary messages are not accepted; send JSON text")
        if len(message.encode("utf-8")) > self.options.max_message_bytes:
            return self._reject("oversized", f"message larger than {self.options.max_message_bytes} bytes")
        try:
            request = json.loads(message)
        except ValueError:
            return self._reject("malformed", "not JSON")
        if not isinstance(request, dict):
            return self._reject("malformed", "expected a JSON object")
        if request.get("type") == "ping":
            return {"type": "pong"}
        command = request.get("command")
        if request.get("type") != "command" or command not in COMMANDS or self.on_command is None:
            accepted = list(COMMANDS) if self.on_command is not None else []
            return self._reject("unknown", f"expected {{'type': 'command', 'command': one of {accepted}}}")
        try:
            self.on_command(command)
        except Exception as error:  # a failing command is reported to the page, never stops the server
            return self._reject("failed", f"{command} failed: {error}")
        return {"type": "done", "command": command}

    def _reject(self, reason: str, detail: str) -> dict[str, Any]:
        self.rejected[reason] += 1
        return {"type": "error", "reason": reason, "detail": detail}

    async def _send_loop(self) -> None:
        """Send the newest frame to every page at most `rate_hz` times a second."""
        options = self.options
        sent_sequence = 0
        next_face = next_cameras = 0.0
        while True:
            await asyncio.sleep(1.0 / options.rate_hz)
            latest = self._latest
            with latest.lock:
                result, cameras, sequence = latest.result, latest.cameras, latest.sequence
                times = list(latest.times)
            if result is None or sequence == sent_sequence or not self._clients:
                continue
            sent_sequence = sequence
            message = self._frame_message(result, times)
            now = time.monotonic()
            if self._face is not None and now >= next_face:
                next_face = now + 1.0 / options.face_hz
                try:
                    message["face"] = await asyncio.to_thread(self._face.render, result.expression, result.gaze)
                except (RuntimeError, OSError, struct.error) as error:  # the page shows the stream without the face
                    self._face, self.face_error = None, f"{type(error).__name__}: {error}"
            elif self._face_loading is not None and self._face_loading.done():
                loading, self._face_loading = self._face_loading, None
                failure = loading.exception()
                if failure is None:
                    self._face = loading.result()
                else:
                    self.face_error = f"{type(failure).__name__}: {failure}"
            if options.camera_hz > 0 and cameras and now >= next_cameras:
                next_cameras = now + 1.0 / options.camera_hz
                message["cameras"] = {
                    name: _data_url(_jpeg(image, options.thumbnail_px)) for name, image in cameras.items()
                }
            broadcast(self._clients, json.dumps(message))
            self.messages_sent += 1

    def _frame_message(self, result: TrackResult, times: list[float]) -> dict[str, Any]:
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return {
            "type": "frame",
            "frame": result.frame_index,
            "timestamp": result.timestamp,
            "fps": round(fps, 2),
            "latency_ms": round(float(result.latency_ms), 3),
            "held": bool(result.held),
            "expressions": {name: round(value, 4) for name, value in result.expressions().items()},
            "gaze": [[round(float(v), 2) for v in eye] for eye in result.gaze],
            "confidence": {region: round(float(value), 3) for region, value in result.confidence.items()},
            "failures": {camera: list(names) for camera, names in result.failures.items()},
            "rejected": dict(self.rejected),
            **({"face_error": self.face_error} if self.face_error else {}),
        }


if __name__ == "__main__":
    if sys.argv[1:2] != ["--face-worker"] or len(sys.argv) != 3 or not sys.argv[2].isdigit():
        sys.exit("usage: python -m egoface.runtime.server --face-worker SIZE (started by ViewerServer)")
    _face_worker(int(sys.argv[2]))
