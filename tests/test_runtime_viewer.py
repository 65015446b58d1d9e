"""The live viewer in a real headless Chromium (Debian's `chromium`, installed by `make install`): the page connects
to the stream, shows the rendered face, which changes with the expressions, and draws the expression and
confidence bars. Screenshots come from the DevTools protocol."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from egoface.face.names import expression_vector
from egoface.runtime.result import TrackResult
from egoface.runtime.server import LiveFace, ViewerOptions, ViewerServer, _FaceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1280, 760)


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, width: int, height: int) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.TemporaryDirectory(prefix="egoface-chromium-", ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [
                CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--hide-scrollbars", f"--window-size={width},{height}",
                "--remote-debugging-port=0", f"--user-data-dir={self.profile.name}", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: close() stops its helper processes too
        )  # fmt: skip
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30.0
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port within 30 s")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self._connection = contextlib.ExitStack()
        self.socket = self._connection.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None))
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"page never satisfied {expression!r} within {timeout} s")
            time.sleep(0.05)

    def screenshot(self) -> np.ndarray:
        """(H, W, 3) uint8 of the page."""
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def box(self, element_id: str) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) pixels of an element."""
        rect = self.evaluate(f"JSON.stringify(document.getElementById('{element_id}').getBoundingClientRect())")
        r = json.loads(rect)
        return int(r["left"]), int(r["top"]), int(r["right"]), int(r["bottom"])

    def close(self) -> None:
        if hasattr(self, "_connection"):
            self._connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        # Chromium's helpers (renderer, crash handler) can outlive the browser and still write into the profile
        # while it is removed ("Directory not empty"): stop the whole group first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.profile.cleanup()


class SyntheticStream:
    """Publishes TrackResults at `rate_hz` from a thread: `expression` (settable) and camera images of a bright disc
    whose size follows jawOpen."""

    def __init__(self, server: ViewerServer, rate_hz: float = 60.0) -> None:
        self.server, self.rate_hz = server, rate_hz
        self.expression = expression_vector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frame = 0
        yy, xx = np.mgrid[:96, :96]
        while not self._stop.is_set():
            expression = self.expression
            radius = 10 + 25 * float(expression[26])  # jawOpen
            disc = (((yy - 48) ** 2 + (xx - 48) ** 2) < radius**2).astype(np.uint8) * 180 + 30
            result = TrackResult(
                timestamp=frame / self.rate_hz,
                frame_index=frame,
                expression=expression,
                gaze=np.array([[12.0, 6.0], [12.0, 6.0]], dtype=np.float32),
                confidence={"eyes": 0.95, "upper_face": 0.8, "lower_face": 0.35},
                failures={"mouth_right": ["covered"]},
                latency_ms=2.5,
            )
            self.server.publish(result, {"eye_left": disc, "eye_right": disc, "mouth_left": disc, "mouth_right": disc})
            frame += 1
            time.sleep(1.0 / self.rate_hz)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1].astype(np.float32)


def test_live_face_moves_with_the_expressions():
    face = LiveFace(96)
    neutral = face.render(expression_vector(), np.zeros((2, 2), np.float32)).astype(np.float32)
    open_jaw = face.render(expression_vector({"jawOpen": 1.0}), np.zeros((2, 2), np.float32)).astype(np.float32)
    assert neutral.shape == (96, 96) and neutral.std() > 20  # a lit face, not a blank image
    lower, upper = slice(60, 96), slice(20, 45)
    assert np.abs(open_jaw[lower] - neutral[lower]).mean() > 4 * np.abs(open_jaw[upper] - neutral[upper]).mean()


def test_face_renderer_process_reports_its_errors():
    face = _FaceProcess(0)  # the renderer refuses this size (ViewerOptions never asks for it)
    with pytest.raises(RuntimeError, match="width must be a positive integer number of pixels, got 0"):
        face.wait_ready()
    # it exits by itself after reporting (close() would kill it after 3 s; a loaded machine can take longer to
    # shut an interpreter down); renders are tested through the page below
    assert face.process.wait(timeout=60) == 0
    face.close()


def capture_viewer(path: Path | None = None) -> dict[str, np.ndarray]:
    """Run the viewer in Chromium on a synthetic stream: screenshots at rest and with the jaw open and a smile.
    Saves the second to `path` when given."""
    server = ViewerServer(ViewerOptions(port=0, face_hz=10, camera_hz=5)).start()
    stream = SyntheticStream(server)
    browser = Chromium(*WINDOW)
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=server.url)
        browser.wait_until(
            "Number(document.body.dataset.faceFrames) >= 2 && document.querySelectorAll('figure').length == 4"
        )
        time.sleep(0.3)
        shots = {"rest": browser.screenshot()}
        stream.expression = expression_vector({"jawOpen": 0.9, "mouthSmile_L": 0.8, "mouthSmile_R": 0.8})
        seen = int(browser.evaluate("Number(document.body.dataset.faceFrames)"))
        browser.wait_until(f"Number(document.body.dataset.faceFrames) >= {seen + 3}")
        time.sleep(0.3)
        shots["open"] = browser.screenshot()
        shots.update({f"box_{name}": np.array(browser.box(name)) for name in ("face", "expressions", "confidence")})
        shots["status"] = np.array(browser.evaluate("document.getElementById('status').textContent"))
        if path is not None:
            Image.fromarray(shots["open"]).save(path)
        return shots
    finally:
        browser.close()
        stream.close()
        server.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make install installs Debian's chromium)")
def test_viewer_in_headless_chromium_shows_the_moving_face_and_bars():
    shots = capture_viewer()
    rest, open_ = shots["rest"], shots["open"]
    assert rest.shape == (WINDOW[1], WINDOW[0], 3)
    face_box = tuple(shots["box_face"])
    face_rest, face_open = crop(rest, face_box), crop(open_, face_box)
    assert face_rest.std() > 20 and face_rest.mean() > 20  # the face image is shown, not blank
    assert np.abs(face_open - face_rest).mean() > 3  # and it changed with the expressions
    bars = crop(open_, tuple(shots["box_expressions"]))
    blue = (bars[..., 2] > 200) & (bars[..., 0] < 120)  # the bars' colour, #58a6ff
    bars_rest = crop(rest, tuple(shots["box_expressions"]))
    blue_rest = (bars_rest[..., 2] > 200) & (bars_rest[..., 0] < 120)
    assert blue.sum() > blue_rest.sum() + 500  # jawOpen and the smiles drew longer bars
    confidence = crop(open_, tuple(shots["box_confidence"]))
    green = (confidence[..., 1] > 150) & (confidence[..., 0] < 120) & (confidence[..., 2] < 120)  # eyes at 0.95
    amber = (confidence[..., 0] > 180) & (confidence[..., 1] > 120) & (confidence[..., 1] < 180)  # lower face 0.35
    assert amber.sum() > 100 and green.sum() > 2 * amber.sum()
    assert "mouth_right: covered" in str(shots["status"])
