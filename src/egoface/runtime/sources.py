"""Frame sources for the tracker: recordings in the dataset store, video files or image folders per camera, live
cameras (OpenCV UVC devices, HTTP MJPEG streams) and a synthetic subject.

Every source yields `Frame`s (per-camera uint8 (H, W) images and a timestamp in seconds, strictly increasing)
through `read()` (None at the end) or iteration, and is a context manager. Paced sources (`realtime=True`, and live
ones) deliver frames at their rate into a ring of `buffer` frames (`BUFFER_FRAMES`, like a camera driver's
buffers): a consumer that stalls briefly catches up on the buffered frames; frames overwritten before it took them
are skipped and counted in `dropped`. Live cameras always give each camera's newest image.

A live camera runs on its own thread: when it fails to open or stops delivering, it is retried with exponential
backoff (`Backoff`) while the other cameras keep running; meanwhile its image in each frame is None (the tracker
flags it `disconnected`).

`open_source(spec)` parses the `--source` strings of the commands (docs/runtime.md):
`synthetic[:rig=NAME,fps=72,size=96,seed=0,script=tiny,render_fps=24]`, `store:ROOT[,subject=S,recording=R]`,
`files:CAMERA=PATH,...[,fps=30]` (a video file or an image folder per camera), `live:CAMERA=URL|DEVICE,...` (an
`http://` MJPEG stream or an OpenCV device index / path).
"""

from __future__ import annotations

import io
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "BUFFER_FRAMES",
    "Backoff",
    "ClipSource",
    "FileSource",
    "Frame",
    "LiveSource",
    "RecordingSource",
    "Source",
    "SyntheticSource",
    "mjpeg_frames",
    "open_source",
]

#: Frames a paced clip or recording keeps for a consumer that stalls (4 frames: 56 ms at 72 Hz).
BUFFER_FRAMES = 4
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff")


@dataclass(frozen=True)
class Frame:
    """One set of camera images. images: camera -> uint8 (H, W), or None when that camera had no frame."""

    index: int
    timestamp: float
    images: dict[str, np.ndarray | None]

    def select(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray | None]:
        """The images of `cameras` (a model's cameras) in that order; raises naming the missing ones."""
        missing = [c for c in cameras if c not in self.images]
        if missing:
            raise ValueError(f"the source has no cameras {missing} that the model needs; it has {list(self.images)}")
        return {c: self.images[c] for c in cameras}


class _Pacer:
    """Frame i is produced at start + i / fps into a ring of `buffer` frames, like a camera driver's buffers.
    `next(i)` sleeps until frame i is produced; a consumer that fell behind gets the oldest frame still buffered,
    and the frames overwritten before it took them count as dropped. buffer=1 always delivers the newest frame."""

    def __init__(self, fps: float, realtime: bool, buffer: int = 1) -> None:
        if buffer < 1:
            raise ValueError(f"a paced source needs a buffer of at least 1 frame, got {buffer}")
        self.period = 1.0 / fps
        self.realtime = realtime
        self.buffer = buffer
        self.start: float | None = None
        self.dropped = 0

    def next(self, index: int) -> int:
        if not self.realtime:
            return index
        now = time.monotonic()
        if self.start is None:
            self.start = now - index * self.period
        due = self.start + index * self.period
        if now < due:
            time.sleep(due - now)
            return index
        oldest = int((now - self.start) / self.period) - self.buffer + 1  # the oldest frame still buffered
        if index < oldest:
            self.dropped += oldest - index
            return oldest
        return index


class Source:
    """Base of all sources: `cameras`, `fps`, `read()`, `close()`, iteration, context manager, `dropped`."""

    cameras: tuple[str, ...] = ()
    fps: float = 30.0
    pacer: _Pacer

    @property
    def dropped(self) -> int:
        """Frames skipped because the consumer fell behind a paced source."""
        return self.pacer.dropped

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release files, threads and connections (idempotent)."""

    def status(self) -> dict[str, Any]:
        """Counters for display and benchmarks (frames delivered and dropped; live cameras add their state)."""
        return {"dropped": self.dropped}

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class ClipSource(Source):
    """Plays a clip of per-camera frames (`images[camera]: (N, H, W)` uint8 at `clip_fps`) at `fps`, blending
    neighbouring clip frames linearly when `fps` is higher (so no two delivered frames are identical), looping when
    `loop`; with `realtime`, paced at `fps` with `buffer` frames buffered. `frames` limits the frame indices
    (delivered plus dropped; None: the clip once, or forever when looping)."""

    def __init__(
        self,
        images: Mapping[str, np.ndarray],
        clip_fps: float,
        fps: float | None = None,
        realtime: bool = False,
        loop: bool = False,
        frames: int | None = None,
        buffer: int = BUFFER_FRAMES,
    ) -> None:
        lengths = {len(v) for v in images.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"a clip needs the same non-zero frame count for every camera, got {sorted(lengths)}")
        self.clip = {c: np.asarray(v) for c, v in images.items()}
        self.cameras = tuple(images)
        self.clip_fps = clip_fps
        self.fps = fps or clip_fps
        self.loop = loop
        (self.length,) = lengths
        once = int(np.floor((self.length - 1) * self.fps / clip_fps)) + 1
        self.limit = frames if frames is not None else (None if loop else once)
        self.pacer = _Pacer(self.fps, realtime, buffer)
        self.index = 0

    def read(self) -> Frame | None:
        if self.limit is not None and self.index >= self.limit:
            return None  # checked before pacing: no wait for a frame that is never delivered
        index = self.pacer.next(self.index)
        if self.limit is not None and index >= self.limit:
            return None
        position = index * self.clip_fps / self.fps  # in clip frames
        if not self.loop and position > self.length - 1:
            return None
        k = int(position)
        weight = np.float32(position - k)
        first, second = k % self.length, (k + 1) % self.length
        images: dict[str, np.ndarray | None] = {}
        for camera, clip in self.clip.items():
            if weight == 0:
                images[camera] = clip[first]
            else:
                blend = (1 - weight) * clip[first] + weight * clip[second].astype(np.float32)
                images[camera] = np.rint(blend).astype(np.uint8)
        self.index = index + 1
        return Frame(index, index / self.fps, images)


class SyntheticSource(ClipSource):
    """A scripted synthetic subject, rendered by the capture pipeline (`egoface.capture.record_subject`: face,
    headset rig, IR renderer, sensor) and played live at `fps`.

    Rendering runs at a few frames per second on a CPU, far below live rates, so the script is rendered once at
    `render_fps` when the source is made (tiny script: 3.8 s) and then played in real time, looping, with frames
    blended between rendered ones. `ood_rate` is the chance of an out-of-distribution event per script segment.
    """

    def __init__(
        self,
        rig: str = "quest-pro-4",
        fps: float = 72.0,
        size: int = 96,
        seed: int = 0,
        script: str = "tiny",
        render_fps: float = 24.0,
        realtime: bool = True,
        frames: int | None = None,
        ood_rate: float = 0.0,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> None:
        from egoface.capture.record import CaptureSettings, SubjectPlan, record_subject
        from egoface.headset import load_rig

        plan = SubjectPlan("live", 0, "synthetic", "test", seed)
        settings = CaptureSettings(script=script, resolution=(size, size), fps=render_fps, ood_rate=ood_rate)
        recording = record_subject(plan, load_rig(rig), settings, on_frame)
        super().__init__(recording.images, render_fps, fps, realtime=realtime, loop=True, frames=frames)


class RecordingSource(Source):
    """A recording in the dataset store at `root` (the first one when `subject`/`recording` are None), read in
    chunks of `chunk` frames; with `realtime`, paced at the recording's rate with `buffer` frames buffered."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        subject: str | None = None,
        recording: str | None = None,
        realtime: bool = False,
        chunk: int = 64,
        buffer: int = BUFFER_FRAMES,
    ) -> None:
        from egoface.data import DatasetStore

        self.store = DatasetStore(root)
        refs = [
            ref
            for ref in self.store.recordings()
            if (subject is None or ref.subject == subject) and (recording is None or ref.recording == recording)
        ]
        if not refs:
            wanted = f"{subject or '*'}/{recording or '*'}"
            raise ValueError(f"no complete recording {wanted} in the dataset store at {root}")
        self.ref = refs[0]
        head = self.store.read_recording(self.ref.subject, self.ref.recording, slice(0, 1))
        self.cameras = tuple(head.images)
        self.fps = float(head.attrs.get("fps", 30.0))
        self.frames = self.ref.frames
        self.chunk = chunk
        self.pacer = _Pacer(self.fps, realtime, buffer)
        self.index = 0
        self._buffer: tuple[int, dict[str, np.ndarray], np.ndarray] | None = None

    def read(self) -> Frame | None:
        if self.index >= self.frames:
            return None
        index = self.pacer.next(self.index)
        if index >= self.frames:
            return None
        start = index - index % self.chunk
        if self._buffer is None or self._buffer[0] != start:
            data = self.store.read_recording(self.ref.subject, self.ref.recording, slice(start, start + self.chunk))
            self._buffer = (start, dict(data.images), np.asarray(data.timestamps))
        _, images, timestamps = self._buffer
        self.index = index + 1
        return Frame(index, float(timestamps[index - start]), {c: images[c][index - start] for c in self.cameras})


def _folder_frames(folder: Path) -> Iterator[np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"image folder {folder} holds no {'/'.join(_IMAGE_SUFFIXES)} files")
    for file in files:
        with Image.open(file) as image:
            yield np.asarray(image.convert("L"))


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="gray")


class FileSource(Source):
    """One video file or image folder per camera (`paths: camera -> path`), frame k of every camera together,
    at `fps` (timestamps k / fps); ends when any camera ends."""

    def __init__(self, paths: Mapping[str, str | os.PathLike[str]], fps: float = 30.0) -> None:
        self.cameras = tuple(paths)
        self.fps = fps
        self.pacer = _Pacer(fps, realtime=False)
        self.readers: dict[str, Iterator[np.ndarray]] = {}
        for camera, value in paths.items():
            path = Path(value)
            if path.is_dir():
                self.readers[camera] = _folder_frames(path)
            elif path.is_file():
                self.readers[camera] = _video_frames(path)
            else:
                raise FileNotFoundError(f"camera {camera!r}: no video file or image folder at {path}")
        self.index = 0

    def read(self) -> Frame | None:
        images: dict[str, np.ndarray | None] = {}
        for camera, reader in self.readers.items():
            image = next(reader, None)
            if image is None:
                return None
            images[camera] = image
        frame = Frame(self.index, self.index / self.fps, images)
        self.index += 1
        return frame


def mjpeg_frames(url: str, timeout: float = 2.0, max_bytes: int = 8 << 20) -> Iterator[np.ndarray]:
    """Grey frames of an HTTP MJPEG stream (`multipart/x-mixed-replace` of JPEGs, as ESP32 and DIY headset cameras
    serve): JPEGs are cut at their start/end markers, so part headers need not carry lengths. Raises on connection
    errors, on the end of the stream, and on more than `max_bytes` without a complete JPEG."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        buffer = bytearray()
        while True:
            chunk = response.read1(65536)
            if not chunk:
                raise ConnectionError(f"MJPEG stream {url} ended")
            buffer += chunk
            while (start := buffer.find(b"\xff\xd8")) >= 0 and (end := buffer.find(b"\xff\xd9", start + 2)) >= 0:
                jpeg = bytes(buffer[start : end + 2])
                del buffer[: end + 2]
                with Image.open(io.BytesIO(jpeg)) as image:
                    yield np.asarray(image.convert("L"))
            if len(buffer) > max_bytes:
                raise ValueError(f"MJPEG stream {url}: {len(buffer)} bytes without a complete JPEG")


def _opencv() -> Any:
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "UVC cameras need OpenCV: `pip install opencv-python-headless` (HTTP MJPEG streams do not)"
        ) from None
    return cv2


def _opencv_frames(device: int | str) -> Iterator[np.ndarray]:
    """Grey frames of an OpenCV capture device (a UVC camera index or a device path)."""
    cv2 = _opencv()
    capture = cv2.VideoCapture(device)
    try:
        if not capture.isOpened():
            raise ConnectionError(f"OpenCV could not open camera {device!r}")
        while True:
            ok, image = capture.read()
            if not ok:
                raise ConnectionError(f"camera {device!r} stopped delivering frames")
            yield image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    finally:
        capture.release()


@dataclass
class Backoff:
    """Retry delays: `initial` s, doubled after every failure up to `maximum` s; `reset()` after a success."""

    initial: float = 0.05
    maximum: float = 2.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        self.delay = self.initial

    def failed(self) -> float:
        """The delay to wait now; the next one is doubled."""
        current = self.delay
        self.delay = min(self.delay * 2.0, self.maximum)
        return current

    def reset(self) -> None:
        self.delay = self.initial


class _CameraThread:
    """Keeps the latest frame of one live camera, reconnecting with backoff."""

    def __init__(self, name: str, frames: Callable[[], Iterator[np.ndarray]], backoff: Backoff) -> None:
        self.name = name
        self.frames = frames
        self.backoff = backoff
        self.latest: np.ndarray | None = None
        self.latest_time = -np.inf
        self.received = 0
        self.connects = 0
        self.errors = 0
        self.last_error = ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"egoface-camera-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                for count, image in enumerate(self.frames()):
                    if count == 0:  # a stream that delivers is a connection
                        self.connects += 1
                        self.backoff.reset()
                    self.latest, self.latest_time = image, time.monotonic()
                    self.received += 1
                    if self.stop.is_set():
                        return
            except Exception as error:  # any failure of a camera means: retry it later
                self.errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
            self.stop.wait(self.backoff.failed())


class LiveSource(Source):
    """Live cameras, `devices: camera -> http(s) MJPEG URL, OpenCV device index or device path`, each on its own
    reader thread, sampled at `fps`: each frame holds every camera's latest image, or None when a camera has had
    none for `stale_s` seconds (disconnected; it is being retried). `frames` limits the frames delivered."""

    def __init__(
        self,
        devices: Mapping[str, str | int],
        fps: float = 72.0,
        stale_s: float = 0.25,
        frames: int | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.cameras = tuple(devices)
        self.fps = fps
        self.stale_s = stale_s
        self.limit = frames
        self.pacer = _Pacer(fps, realtime=True)
        self.index = 0
        self.threads = [
            _CameraThread(camera, _opener(device), backoff or Backoff()) for camera, device in devices.items()
        ]

    def read(self) -> Frame | None:
        if self.limit is not None and self.index >= self.limit:
            return None
        index = self.pacer.next(self.index)
        now = time.monotonic()
        images = {t.name: t.latest if now - t.latest_time <= self.stale_s else None for t in self.threads}
        self.index = index + 1
        return Frame(index, index / self.fps, images)

    def status(self) -> dict[str, Any]:
        cameras = {
            t.name: {"frames": t.received, "connects": t.connects, "errors": t.errors, "last_error": t.last_error}
            for t in self.threads
        }
        return {"dropped": self.dropped, "cameras": cameras}

    def close(self) -> None:
        for thread in self.threads:
            thread.stop.set()
        for thread in self.threads:
            thread.thread.join(timeout=3.0)


def _opener(device: str | int) -> Callable[[], Iterator[np.ndarray]]:
    if isinstance(device, str) and device.startswith(("http://", "https://")):
        return lambda: mjpeg_frames(device)
    _opencv()  # fails now, with the install hint, rather than on every retry
    target: int | str = int(device) if isinstance(device, str) and device.isdigit() else device
    return lambda: _opencv_frames(target)


def open_source(spec: str) -> Source:
    """A source from a `--source` string (module docstring); raises naming the accepted forms."""
    kind, _, rest = spec.partition(":")
    if kind not in ("synthetic", "store", "files", "live"):
        raise ValueError(
            f"unknown source {spec!r}; expected synthetic[:rig=NAME,fps=F,size=PX,seed=S], store:ROOT[,subject=S,"
            "recording=R,realtime=1], files:CAMERA=PATH,...[,fps=F] or live:CAMERA=URL|DEVICE,...[,fps=F]"
        )
    root = ""
    if kind == "store":  # the first item is the store's path
        root, _, rest = rest.partition(",")
    options = dict(_pairs(rest)) if rest else {}
    try:
        if kind == "synthetic":
            return SyntheticSource(
                rig=options.pop("rig", "quest-pro-4"),
                fps=float(options.pop("fps", 72.0)),
                size=int(options.pop("size", 96)),
                seed=int(options.pop("seed", 0)),
                script=options.pop("script", "tiny"),
                render_fps=float(options.pop("render_fps", 24.0)),
                **_no_more(options, spec),
            )
        if kind == "store":
            return RecordingSource(
                root,
                subject=options.pop("subject", None),
                recording=options.pop("recording", None),
                realtime=options.pop("realtime", "0") not in ("0", "false", "no"),
                **_no_more(options, spec),
            )
        if kind == "files":
            fps = float(options.pop("fps", 30.0))
            return FileSource(_cameras(options, spec), fps=fps)
        fps = float(options.pop("fps", 72.0))
        return LiveSource(_cameras(options, spec), fps=fps)
    except (TypeError, KeyError) as error:
        raise ValueError(f"bad source {spec!r}: {error}") from None


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    for item in text.split(","):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ValueError(f"expected KEY=VALUE in a source spec, got {item!r}")
        yield key.strip(), value.strip()


def _no_more(options: dict[str, str], spec: str) -> dict[str, Any]:
    if options:
        raise ValueError(f"unknown options {sorted(options)} in source {spec!r}")
    return {}


def _cameras(options: dict[str, str], spec: str) -> dict[str, str]:
    if not options:
        raise ValueError(f"source {spec!r} names no cameras; expected CAMERA=PATH pairs like eye_left=left.mp4")
    return options
