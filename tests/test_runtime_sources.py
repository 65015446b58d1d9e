"""Frame sources: a clip plays at a higher rate with blended (never identical) frames and loops; a paced source
counts the frames a slow consumer misses; a store recording is read back exactly across chunk boundaries; image
folders and a lossless video give their frames; an HTTP MJPEG camera served on loopback is read, disconnects (its
images become None while the other camera keeps delivering) and is reconnected with backoff; `--source` strings
parse or fail naming the accepted forms; the synthetic source renders a subject and plays it live (slow)."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest
from PIL import Image

from egoface.data import DatasetStore
from egoface.runtime import sources
from egoface.runtime.sources import (
    Backoff,
    ClipSource,
    FileSource,
    LiveSource,
    RecordingSource,
    SyntheticSource,
    open_source,
)
from test_data_helpers import make_recording


def test_clip_blends_between_frames_and_loops() -> None:
    clip = {"eye_left": np.stack([np.full((8, 8), v, np.uint8) for v in (0, 90, 180)])}
    source = ClipSource(clip, clip_fps=10.0, fps=30.0, loop=True, frames=12)
    values = [int(frame.images["eye_left"][0, 0]) for frame in source]  # type: ignore[index]
    assert values == [0, 30, 60, 90, 120, 150, 180, 120, 60, 0, 30, 60]  # 180 -> 0 blends across the loop seam
    once = ClipSource(clip, clip_fps=10.0, fps=30.0)
    assert len(list(once)) == 7  # up to the last clip frame, no extrapolation
    times = [frame.timestamp for frame in ClipSource(clip, 10.0, 30.0, loop=True, frames=4)]
    assert times == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])


class _Clock:
    """A fake `time` for the sources module: `sleep` advances `monotonic`, so pacing is exact and testable."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_paced_source_buffers_short_stalls_and_counts_what_it_drops(monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(sources, "time", clock)
    clip = {"eye_left": np.random.default_rng(0).integers(0, 256, (10, 8, 8), dtype=np.uint8)}
    source = ClipSource(clip, clip_fps=100.0, realtime=True, loop=True, frames=60, buffer=4)
    indices = []
    for frame in source:
        assert clock.now >= 100.0 + frame.index / 100.0  # never delivered before it is produced
        indices.append(frame.index)
        clock.now += 0.001  # tracking
        if frame.index == 5:
            clock.now += 0.025  # a stall of 2.5 frame periods: within the 4-frame buffer
        if frame.index == 30:
            clock.now += 0.105  # 10.5 periods: frame 40 is produced at 100.406, frames 31-36 are overwritten
    assert indices[:31] == list(range(31))  # nothing lost to the short stall
    assert indices[31] == 37 and source.dropped == 6 == 60 - len(indices)
    assert clock.now == pytest.approx(100.0 + 0.59 + 0.001)  # paced: the last frame (59) at 0.59 s


def test_recording_source_reads_the_store_exactly(tmp_path) -> None:
    data = make_recording(frames=40, size=(24, 32), domain="unlabeled")
    DatasetStore(tmp_path).write_recording(data)
    with RecordingSource(tmp_path, chunk=16) as source:
        frames = list(source)
    assert source.cameras == ("eye_left", "eye_right", "mouth_left", "mouth_right")
    assert len(frames) == 40
    for k in (0, 15, 16, 39):
        for camera in source.cameras:
            np.testing.assert_array_equal(frames[k].images[camera], data.images[camera][k])
        assert frames[k].timestamp == pytest.approx(data.timestamps[k])
    with pytest.raises(ValueError, match="no complete recording nobody/"):
        RecordingSource(tmp_path, subject="nobody")


def test_file_source_reads_folders_and_video(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 32), dtype=np.uint8) for _ in range(5)]
    folder = tmp_path / "eye"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    video = tmp_path / "mouth.mkv"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "gray"
        for image in images[:4]:  # one frame fewer: the source ends with the shortest camera
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="gray")))
        container.mux(stream.encode())
    frames = list(FileSource({"eye_left": folder, "mouth_left": video}, fps=30.0))
    assert len(frames) == 4 and frames[3].timestamp == pytest.approx(0.1)
    for frame, image in zip(frames, images, strict=False):
        np.testing.assert_array_equal(frame.images["eye_left"], image)
        np.testing.assert_array_equal(frame.images["mouth_left"], image)  # ffv1 is lossless
    with pytest.raises(FileNotFoundError, match="camera 'eye_right': no video file or image folder"):
        FileSource({"eye_right": tmp_path / "missing"})


class _Cameras:
    """An MJPEG server on 127.0.0.1 with one stream per path (`/eye`, `/mouth`); `down` holds the paths that
    refuse connections (503) and drop their open streams."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        cameras = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path in cameras.down:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for jpeg in cameras.jpegs():
                    if self.path in cameras.down:
                        return  # the camera unplugged: the connection closes
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n")
                    time.sleep(0.01)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def jpegs(self) -> Iterator[bytes]:
        rng = np.random.default_rng()
        while True:
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(buffer, "JPEG")
            yield buffer.getvalue()

    def close(self) -> None:
        self.down = {"/eye", "/mouth"}
        self.server.shutdown()
        self.server.server_close()


def _wait(source: LiveSource, condition, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    frames = []
    while time.monotonic() < deadline:
        frame = source.read()
        assert frame is not None
        frames.append(frame)
        if condition(frame):
            return frames
    raise AssertionError(f"condition not met within {timeout} s; status {source.status()}")


def test_mjpeg_camera_disconnects_and_reconnects() -> None:
    cameras = _Cameras()
    source = LiveSource(
        {"eye_left": cameras.url("/eye"), "mouth_left": cameras.url("/mouth")},
        fps=50.0,
        stale_s=0.1,
        backoff=Backoff(initial=0.02, maximum=0.2),
    )
    try:
        frame = _wait(source, lambda f: all(v is not None for v in f.images.values()))[-1]
        assert frame.images["eye_left"].shape == (40, 48) and frame.images["eye_left"].dtype == np.uint8
        cameras.down.add("/mouth")
        frames = _wait(source, lambda f: f.images["mouth_left"] is None)
        during = [source.read() for _ in range(10)]
        assert all(f is not None and f.images["mouth_left"] is None for f in during)
        assert all(f is not None and f.images["eye_left"] is not None for f in during)  # the other keeps running
        assert source.status()["cameras"]["mouth_left"]["errors"] >= 1  # retried and refused meanwhile
        cameras.down.discard("/mouth")
        _wait(source, lambda f: f.images["mouth_left"] is not None)
        status = source.status()["cameras"]
        assert status["mouth_left"]["connects"] >= 2 and status["eye_left"]["connects"] == 1
        assert frames and [f.timestamp for f in frames] == sorted({f.timestamp for f in frames})
    finally:
        source.close()
        cameras.close()


def test_open_source_parses_specs(tmp_path) -> None:
    DatasetStore(tmp_path / "store").write_recording(make_recording(frames=5, domain="unlabeled"))
    with open_source(f"store:{tmp_path / 'store'},subject=s000") as source:
        assert isinstance(source, RecordingSource) and source.frames == 5
    with pytest.raises(ValueError, match="unknown source 'webcam:0'; expected synthetic"):
        open_source("webcam:0")
    with pytest.raises(ValueError, match="names no cameras"):
        open_source("files:fps=30")
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        open_source("live:eye_left")
    with pytest.raises(ValueError, match=r"unknown options \['colour'\]"):
        open_source(f"store:{tmp_path / 'store'},colour=red")


@pytest.mark.slow
def test_synthetic_source_renders_a_subject_live() -> None:
    source = SyntheticSource(size=32, render_fps=8.0, fps=72.0, frames=40, realtime=True)
    begin = time.monotonic()
    frames = list(source)
    assert time.monotonic() - begin >= 39 / 72 - 0.01
    assert len(frames) + source.dropped == 40
    assert source.cameras == ("eye_left", "eye_right", "mouth_left", "mouth_right")
    first = frames[0].images["eye_left"]
    assert first is not None and first.shape == (32, 32) and 20 < first.mean() < 235  # a lit face, not blank
    for a, b in itertools.pairwise(frames):
        assert not np.array_equal(a.images["mouth_left"], b.images["mouth_left"])  # never frozen


def test_uvc_camera_without_opencv_fails_with_the_install_hint(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_cv2(name: str, *args: object, **kwargs: object) -> object:
        if name == "cv2":
            raise ImportError("No module named 'cv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    with pytest.raises(ImportError, match="pip install opencv-python-headless"):
        LiveSource({"eye_left": "0"})
