"""Pictures of recordings: every camera side by side with a frontal render of the true face and expression bars,
as a video over a recording or as a contact sheet of segment peaks.

True labels come from the training tree (synthetic) or the evaluation-only reader (real); unlabeled recordings
show only their cameras.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from egoface.capture.recording import Labels, SubjectInfo
from egoface.data import DatasetStore, OracleReader
from egoface.eval.subjects import subject_appearance, subject_face_model, subject_rig
from egoface.face.appearance import surface_reflectance
from egoface.face.names import EXPRESSION_NAMES
from egoface.render.scene import Mesh, frontal_camera, render_view
from egoface.render.sheets import studio_lights, tone_map

__all__ = [
    "MAIN_EXPRESSIONS",
    "FrontalFace",
    "expression_bars",
    "recording_frames",
    "segment_peak_sheet",
    "write_video",
]

#: The expressions shown as bars: the ones that carry most of what a face does.
MAIN_EXPRESSIONS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthSmile_L", "mouthSmile_R", "mouthPucker", "mouthFunnel", "mouthStretch_L",
    "cheekPuff_L", "eyeBlink_L", "eyeBlink_R", "eyeWide_L", "browInnerUp_L", "browDown_L",
)  # fmt: skip
_FONT = ImageFont.load_default(size=11)


class FrontalFace:
    """Frontal, studio-lit renders of one subject's own face. size: pixels."""

    def __init__(self, info: SubjectInfo, size: int) -> None:
        self.rig = subject_rig(info)
        reflectance = surface_reflectance(subject_face_model(info), subject_appearance(info))
        self.albedo, self.specular = reflectance.albedo, reflectance.specular
        self.camera = frontal_camera(size, size, distance_mm=380.0)
        self.lights = studio_lights(self.camera)
        self.exposure: float | None = None

    def render(self, expression: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        """expression (53,), gaze (2, 2) deg -> (size, size) uint8."""
        with torch.no_grad():
            vertices = self.rig(torch.from_numpy(expression[None]), torch.from_numpy(gaze[None])).vertices[0]
        radiance = render_view(
            Mesh(vertices.numpy(), self.rig.triangles, self.albedo, self.specular), self.camera, self.lights
        )
        if self.exposure is None:  # fixed after the first frame, so that brightness changes mean something
            self.exposure = 0.9 / float(np.percentile(radiance[radiance > 0], 99.5))
        return tone_map(radiance, self.exposure)


def expression_bars(
    expression: np.ndarray, height: int, width: int = 190, reference: np.ndarray | None = None
) -> np.ndarray:
    """(53,) coefficients -> (height, width) uint8 panel of labelled horizontal bars: as many of `MAIN_EXPRESSIONS`
    as fit at 13 px a row; `reference` (53,) (e.g. the truth under a prediction) is drawn as a tick on each bar."""
    panel = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(panel)
    shown = MAIN_EXPRESSIONS[: max(1, height // 13)]
    row = height / len(shown)
    for i, name in enumerate(shown):
        value = float(np.clip(expression[EXPRESSION_NAMES.index(name)], 0.0, 1.0))
        top = int(i * row + 2)
        draw.text((2, top), name, fill=200, font=_FONT)
        draw.rectangle((100, top + 2, 100 + int(value * (width - 104)), top + int(row) - 4), fill=230)
        draw.rectangle((100, top + 2, width - 4, top + int(row) - 4), outline=90)
        if reference is not None:
            tick = 100 + int(float(np.clip(reference[EXPRESSION_NAMES.index(name)], 0.0, 1.0)) * (width - 104))
            draw.line((tick, top, tick, top + int(row) - 2), fill=120, width=2)
    return np.asarray(panel)


def _tile(image: np.ndarray, size: int, label: str) -> np.ndarray:
    tile = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    ImageDraw.Draw(tile).text((3, 2), label, fill=255, font=_FONT)
    return np.asarray(tile)


def _panel(
    cameras: dict[str, np.ndarray],
    frame: int,
    size: int,
    face: FrontalFace | None,
    labels: Labels | None,
    prediction: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """cameras | true face | tracked face | bars (tracked, with the truth as ticks; the truth alone without a
    prediction) for one frame."""
    tiles = [_tile(images[frame], size, name) for name, images in cameras.items()]
    truth = None if labels is None else labels.expression[frame]
    if face is not None and labels is not None:
        tiles.append(_tile(face.render(labels.expression[frame], labels.gaze[frame]), size, "true face"))
    if face is not None and prediction is not None:
        expression, gaze = prediction[0][frame], prediction[1][frame]
        tiles.append(_tile(face.render(expression, gaze), size, "tracked face"))
        tiles.append(expression_bars(expression, size, reference=truth))
    elif truth is not None:
        tiles.append(expression_bars(truth, size))
    return np.concatenate(tiles, axis=1)


def _open(root: str | os.PathLike[str], subject: str, recording: str):
    store = DatasetStore(root)
    data = store.read_recording(subject, recording)
    labels = data.labels
    if labels is None and data.subject.domain == "real":
        labels = OracleReader(root).labels(subject, recording)
    return data, labels


def recording_frames(
    root: str | os.PathLike[str],
    subject: str,
    recording: str,
    size: int = 160,
    frames: Sequence[int] | None = None,
    prediction: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """Side-by-side panels (cameras | true face | bars), one per frame of `frames` (default all); with a tracker's
    `prediction` (expression (N, 53), gaze (N, 2, 2)) also the tracked face, and bars of the tracked values."""
    data, labels = _open(root, subject, recording)
    face = FrontalFace(data.subject, size)
    for frame in frames if frames is not None else range(data.frames):
        yield _panel(dict(data.images), frame, size, face if labels is not None or prediction else None, labels,
                     prediction)  # fmt: skip


def segment_peak_sheet(root: str | os.PathLike[str], subject: str, recording: str, size: int = 128) -> np.ndarray:
    """One row per segment of the recording at its peak frame (middle of the hold), labelled -> uint8 image."""
    data, labels = _open(root, subject, recording)
    face = FrontalFace(data.subject, size) if labels is not None else None
    rows = []
    for segment in data.segments or ():
        has_hold = segment.get("peak_start_frame") is not None
        start = segment["peak_start_frame"] if has_hold else segment["start_frame"]
        stop = segment["peak_stop_frame"] if has_hold else segment["stop_frame"]
        frame = (int(start) + int(stop) - 1) // 2
        row = _panel(dict(data.images), frame, size, face, labels)
        strip = Image.new("L", (row.shape[1], 14), 0)
        ImageDraw.Draw(strip).text((3, 1), f"{segment['name']} (frame {frame})", fill=255, font=_FONT)
        rows += [np.asarray(strip), row]
    if not rows:
        raise ValueError(f"{subject}/{recording} has no segment table (unlabeled recordings have none)")
    return np.concatenate(rows, axis=0)


def write_video(
    frames: Iterator[np.ndarray], path: str | os.PathLike[str], fps: float, on_frame: Callable[[], None] | None = None
) -> None:
    """Encode grayscale frames as H.264 MP4; written to a temporary file and renamed when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial.mp4")
    container = av.open(str(partial), mode="w")
    stream = None
    try:
        for image in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=round(fps))
                stream.height, stream.width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
                stream.pix_fmt = "yuv420p"
            even = np.ascontiguousarray(image[: stream.height, : stream.width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.stack([even] * 3, axis=-1), format="rgb24")):
                container.mux(packet)
            if on_frame is not None:
                on_frame()
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        container.close()
    os.replace(partial, path)
