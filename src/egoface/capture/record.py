"""Recording one subject in one domain: the capture script performed by a face, seen by a headset's cameras.

`record_subject` draws the subject (identity, appearance, idiosyncrasies in the real domain), animates the
capture script, adds donning and slip, renders every camera of the rig with its LEDs, occluders and the subject's
glasses, runs the IR sensor with per-session auto-exposure, drops in occasional out-of-distribution events (a hand
in view, a covered camera) and returns a `RecordingData` with images, labels (where the domain has them), 2D
keypoints with visibility, the segment table and everything needed to rebuild the subject's meshes.
Deterministic from the subject's seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import yaml
from scipy.ndimage import gaussian_filter

from egoface.capture.animation import animate
from egoface.capture.domains import DOMAIN_LOOKS, DomainLook
from egoface.capture.recording import DOMAINS, Labels, RecordingData, SubjectInfo
from egoface.capture.script import PRESETS, build_script
from egoface.face import shared_face_model
from egoface.face.appearance import glasses_geometry, surface_reflectance
from egoface.face.rig import sample_idiosyncrasies
from egoface.headset import DonningModel, HeadsetRig, rig_to_dict
from egoface.render.cameras import Camera
from egoface.render.scene import Mesh, RenderedView, render_scenes
from egoface.render.sensor import AutoExposure, SensorModel, cover_camera, hand_in_view, sense

__all__ = ["CaptureSettings", "SubjectPlan", "record_subject"]

_POSE_CHUNK = 32  # frames posed per batch
_KEYPOINT_DEPTH_TOLERANCE_MM = 3.0
_TYPICAL_EXPOSURE = 8000.0  # electrons per unit radiance that expose LED-lit skin at ~120 DN
_SETTLE_ITERATIONS = 60  # at most, before the first frame (a camera's exposure converges within ~1 s)
_GLASSES_FRAME_ALBEDO, _GLASSES_FRAME_SPECULAR, _GLASSES_SPECULAR = 0.08, 0.3, 0.6


@dataclass(frozen=True)
class SubjectPlan:
    """One subject to record. index: its number in the dataset (with `seed` it fixes all of the subject's
    randomness); face_model: a `load_face_model` spec."""

    subject: str
    index: int
    domain: str
    split: str
    seed: int
    face_model: str = "procedural"

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")


@dataclass(frozen=True)
class CaptureSettings:
    """script: capture-script preset; resolution: (width, height) px for every camera, None = each camera's own;
    fps: capture rate, None = the rig's; ood_rate: chance per expression segment of an out-of-distribution event;
    recording: the recording's name; idiosyncrasies: strength of every subject's person-specific idiosyncrasies
    (`egoface.face.rig.sample_idiosyncrasies`), None = its domain's (0 synthetic, 1 real)."""

    script: str = "tiny"
    resolution: tuple[int, int] | None = None
    fps: float | None = None
    ood_rate: float = 0.05
    recording: str = "script"
    idiosyncrasies: float | None = None

    def __post_init__(self) -> None:
        if self.script not in PRESETS:
            raise ValueError(f"script must be one of {PRESETS}, got {self.script!r}")
        if not 0.0 <= self.ood_rate <= 1.0:
            raise ValueError(f"ood_rate must be in [0, 1], got {self.ood_rate}")
        if self.idiosyncrasies is not None and not 0.0 <= self.idiosyncrasies <= 4.0:
            raise ValueError(f"idiosyncrasies must be a strength in [0, 4] or None, got {self.idiosyncrasies}")


def record_subject(
    plan: SubjectPlan,
    rig: HeadsetRig,
    settings: CaptureSettings,
    on_frame: Callable[[int, int], None] | None = None,
) -> RecordingData:
    """Record `plan`'s subject wearing `rig` -> one `RecordingData`. on_frame(done, total) reports progress."""
    look = DOMAIN_LOOKS[plan.domain]
    rng = np.random.default_rng([plan.seed, plan.index, DOMAINS.index(plan.domain)])
    model = shared_face_model(plan.face_model)
    identity = rng.standard_normal(model.num_identity_components).astype(np.float32)
    appearance = look.appearance(rng)
    strength = look.idiosyncrasy_strength if settings.idiosyncrasies is None else settings.idiosyncrasies
    idiosyncrasies = sample_idiosyncrasies(int(rng.integers(2**31)), strength) if strength > 0 else None
    face_rig = model.rig(torch.from_numpy(identity), idiosyncrasies)
    fps = settings.fps or rig.cameras[0].fps
    script = build_script(settings.script, fps)
    performance = animate(script, subject_seed=int(rng.integers(2**31)))
    donning = DonningModel()
    poses = donning.head_pose_track(donning.sample_session_pose(rng, rig.head_pose), performance.expression, fps, rng)
    num_frames = performance.num_frames
    timestamps = script.frame_times().astype(np.float64)

    reflectance = surface_reflectance(model, appearance)
    glasses = glasses_geometry(face_rig.eyeball_centers.numpy(), appearance) if appearance.glasses else None
    # The session's scene has fixed triangles and materials (face, glasses frame, the rig's occluders); each frame
    # moves the face and the glasses with the head (placeholder positions here).
    static_parts = list(rig.occluder_meshes().values())
    moving_parts = [
        Mesh(np.zeros((len(reflectance.albedo), 3)), model.triangles, reflectance.albedo, reflectance.specular)
    ]
    lens_mesh = None
    if glasses is not None:
        moving_parts.append(
            Mesh.uniform(
                glasses.frame_vertices, glasses.frame_triangles, _GLASSES_FRAME_ALBEDO, _GLASSES_FRAME_SPECULAR
            )
        )
        lens_mesh = Mesh.uniform(glasses.lens_vertices, glasses.lens_triangles, 0.0, _GLASSES_SPECULAR)
    scene = Mesh.concatenate(moving_parts + static_parts)
    static_vertices = [part.vertices for part in static_parts]
    cameras = {name: rig.camera(name, settings.resolution) for name in rig.camera_names}
    lights = rig.lights()
    sensor_frames = max(1, round(rig.cameras[0].fps / fps))
    sensors = {name: _CameraSensor(look, rng, sensor_frames) for name in cameras}
    ambient = _ambient_track(look, num_frames, fps, rng)
    backgrounds = {name: _background(camera, rng) for name, camera in cameras.items()}
    landmark_ids = model.topology.landmarks.vertex_ids

    images = {name: np.zeros((num_frames, c.height, c.width), np.uint8) for name, c in cameras.items()}
    keypoints = {name: np.zeros((num_frames, len(landmark_ids), 2), np.float32) for name in cameras}
    visibility = {name: np.zeros((num_frames, len(landmark_ids)), bool) for name in cameras}
    expression = np.zeros((num_frames, 53), np.float32)
    for start in range(0, num_frames, _POSE_CHUNK):
        stop = min(start + _POSE_CHUNK, num_frames)
        with torch.no_grad():
            face = face_rig(performance.expression[start:stop], performance.gaze[start:stop])
        expression[start:stop] = face.expression.numpy()
        for offset, vertices in enumerate(face.vertices.numpy()):
            frame = start + offset
            pose = poses[frame]
            moved = [pose.apply(vertices)]
            lenses = None
            if glasses is not None and lens_mesh is not None:
                moved.append(pose.apply(glasses.frame_vertices))
                lenses = lens_mesh.with_vertices(pose.apply(glasses.lens_vertices))
            mesh = scene.with_vertices(np.concatenate(moved + static_vertices))
            views = render_scenes(mesh, list(cameras.values()), lights, lenses, ambient=float(ambient[frame]))
            for (name, camera), view in zip(cameras.items(), views, strict=True):
                empty = view.fragments.triangle_id < 0
                radiance = np.where(empty, backgrounds[name] * ambient[frame], view.radiance)
                images[name][frame] = sensors[name].capture(radiance)
                keypoints[name][frame], visibility[name][frame] = _keypoints(camera, view, landmark_ids)
            if on_frame is not None:
                on_frame(frame + 1, num_frames)
    ood = _out_of_distribution_events(images, script.segment_table(), settings.ood_rate, rng)

    labels = None
    if look.labelled:
        labels = Labels(
            expression=expression,
            gaze=performance.gaze.astype(np.float32),
            head_rotation=poses.rotation.astype(np.float32),
            head_translation=poses.translation.astype(np.float32),
            keypoints=keypoints,
            keypoint_visibility=visibility,
            keypoint_names=tuple(model.topology.landmarks.names),
        )
    subject = SubjectInfo(
        subject=plan.subject,
        domain=plan.domain,
        split=plan.split,
        face_model=plan.face_model,
        identity=identity,
        appearance=dataclasses.asdict(appearance),
        idiosyncrasies=None if idiosyncrasies is None else dataclasses.asdict(idiosyncrasies),
        rig_name=rig.name,
        rig_text=yaml.safe_dump(rig_to_dict(rig), sort_keys=False),
        cameras=tuple(cameras),
    )
    return RecordingData(
        subject=subject,
        recording=settings.recording,
        images=images,
        timestamps=timestamps,
        labels=labels,
        ood=ood,
        segments=script.segment_table() if look.labelled else None,
        attrs={
            "seed": plan.seed,
            "index": plan.index,
            "fps": fps,
            "script": settings.script,
            "sensor": dataclasses.asdict(look.sensor),
            "session_head_pose_deg_mm": np.concatenate([poses[0].axis_angle_deg, poses[0].translation]).tolist(),
        },
    )


class _CameraSensor:
    """One camera's sensor over a session: auto-exposure state, analog gain, the previous frame for motion blur."""

    def __init__(self, look: DomainLook, rng: np.random.Generator, sensor_frames: int) -> None:
        """sensor_frames: the camera's frames per captured frame (its exposure loop runs on all of them)."""
        self.model: SensorModel = look.sensor
        self.motion_blur = look.motion_blur
        self.rng = rng
        self.gain = float(rng.uniform(0.9, 1.3))
        self.exposure = AutoExposure(exposure=_TYPICAL_EXPOSURE * float(rng.uniform(0.5, 2.0)))
        self.sensor_frames = sensor_frames
        self.previous: np.ndarray | None = None

    def capture(self, radiance: np.ndarray) -> np.ndarray:
        """radiance (H, W) -> the delivered uint8 frame; the camera has settled its exposure on the first frame's
        scene before the session starts (the loop runs until the meter is within 3% of its target)."""
        if self.previous is None:
            for _ in range(_SETTLE_ITERATIONS):
                frame = sense(radiance, self.model, self.exposure.exposure, self.rng, self.gain)
                if abs(self.exposure.level(frame) / self.exposure.target_dn - 1.0) < 0.03:
                    break
                self.exposure.update(frame)
        frame = sense(
            radiance, self.model, self.exposure.exposure, self.rng, self.gain, self.previous, self.motion_blur
        )
        self.exposure.update(frame, self.sensor_frames)
        self.previous = radiance
        return frame


def _ambient_track(look: DomainLook, num_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """(N,) ambient IR level: a per-session level that drifts slowly (sunlight through the gap under the headset)."""
    level = look.ambient_max * rng.uniform(0.1, 1.0)
    period_s = rng.uniform(5.0, 30.0)
    t = np.arange(num_frames) / fps
    return level * (1.0 + 0.5 * np.sin(2 * np.pi * t / period_s + rng.uniform(0, 2 * np.pi)))


def _background(camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """(H, W) reflectance of what lies beyond the face (room, shoulders): smooth blotches in [0.1, 0.7], lit only by
    the ambient IR (the LEDs' light falls off long before it)."""
    noise = gaussian_filter(rng.standard_normal((camera.height, camera.width)), 0.08 * camera.width, mode="wrap")
    noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-9)
    return 0.1 + 0.6 * noise


def _keypoints(camera: Camera, view: RenderedView, vertex_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mesh vertices `vertex_ids` (L,) in a view -> pixels (L, 2) and visibility (L,): in front of the lens,
    inside the image, and its pixel shows the point's own surface (depth within a small tolerance: not hidden
    behind another surface, not off the silhouette's edge)."""
    pixels = view.projection.pixels[vertex_ids].astype(np.float32)
    depth, valid = view.projection.depth[vertex_ids], view.projection.valid[vertex_ids]
    column, row = np.rint(pixels[:, 0]).astype(int), np.rint(pixels[:, 1]).astype(int)
    inside = valid & (column >= 0) & (column < camera.width) & (row >= 0) & (row < camera.height)
    visible = np.zeros(len(vertex_ids), bool)
    surface = view.fragments.depth[row[inside], column[inside]]
    visible[inside] = np.abs(surface - depth[inside]) <= _KEYPOINT_DEPTH_TOLERANCE_MM
    return np.nan_to_num(pixels, nan=-1.0, posinf=-1.0, neginf=-1.0), visible


def _out_of_distribution_events(
    images: dict[str, np.ndarray], segments: list[dict[str, object]], rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Corrupt short runs of frames of one camera (a hand in view or a covered lens) in place -> (N,) flags."""
    num_frames = len(next(iter(images.values())))
    flags = np.zeros(num_frames, bool)
    names = list(images)
    for segment in segments:
        if segment["kind"] != "expression" or rng.random() >= rate:
            continue
        start, stop = int(segment["start_frame"]), int(segment["stop_frame"])  # type: ignore[call-overload]
        length = max(1, int(rng.uniform(0.3, 0.8) * (stop - start)))
        first = int(rng.integers(start, max(start + 1, stop - length)))
        camera = names[int(rng.integers(len(names)))]
        event = hand_in_view if rng.random() < 0.5 else cover_camera
        event_rng = np.random.default_rng(rng.integers(2**31))
        for frame in range(first, first + length):
            images[camera][frame] = event(images[camera][frame], np.random.default_rng(event_rng.integers(2**31)))
        flags[first : first + length] = True
    return flags
