"""The anchor-calibrated encoder at run time: every calibration module exports to a per-frame graph with an
`anchor_memory` input plus an enrollment graph, and ONNX Runtime (enrollment graph, then per-frame graph) agrees
with eager torch (`enroll` + `set_anchors` + forward) within 1e-4; the Tracker feeds a profile's memory, refuses
without one or with one enrolled for another model; `egoface enroll` stores the memory; the per-frame and
enrollment path runs without torch."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from calibrated_models import random_calibrated
from egoface.cli.main import main
from egoface.cli.runtime import model_file
from egoface.data import DatasetStore
from egoface.models import save_model
from egoface.models.calibrated import CALIBRATION_MODULES, CalibratedEncoder
from egoface.runtime.bench import measure_anchor_overhead
from egoface.runtime.calibration import Profile, ProfileStore
from egoface.runtime.export import ANCHOR_METADATA_KEYS, METADATA_KEYS, OUTPUT_NAMES, enroll_graph_path, export_onnx
from egoface.runtime.tracker import AnchorEnroller, AnchorInput, Tracker, TrackerOptions
from test_data_helpers import make_recording

ANCHORS = ("neutral", "big_smile")
SIZE = 32
_DIR = Path(tempfile.mkdtemp(prefix="egoface-calibrated-tests-"))


#: Every calibration module, and the concatenation modules with their fusion folded into the tail (linear_fusion)
VARIANTS = [(module, False) for module in CALIBRATION_MODULES] + [("late_fusion", True), ("pooling", True)]


def calibrated(module: str, seed: int = 0, linear_fusion: bool = False) -> CalibratedEncoder:
    """calibrated_nano with `module`, two anchors, 32x32, seeded random weights (fusions too), eval mode."""
    return random_calibrated(module, ANCHORS, SIZE, seed, linear_fusion=linear_fusion)


@functools.cache
def exported(module: str = "late_fusion", seed: int = 0, linear_fusion: bool = False) -> Path:
    name = f"{module}-linear" if linear_fusion else module
    return export_onnx(calibrated(module, seed, linear_fusion).eval(), _DIR / f"{name}-{seed}.onnx", f"nano-{name}")


def textured(rng: np.random.Generator, level: float) -> dict[str, np.ndarray]:
    """Four textured uint8 (40, 36) camera images around `level`."""
    y, x = np.mgrid[:40, :36]
    base = level + 40 * np.sin(x / 5.0) * np.cos(y / 7.0)
    cameras = ("eye_left", "eye_right", "mouth_left", "mouth_right")
    return {c: np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8) for c in cameras}


def enrolled_profile(path: Path, name: str = "alice") -> Profile:
    rng = np.random.default_rng(0)
    captured = {anchor: [textured(rng, 80 + 40 * i) for _ in range(3)] for i, anchor in enumerate(ANCHORS)}
    profile = Profile(name)
    memory = AnchorEnroller(path).enroll(captured)
    profile.memories[memory.model_id] = memory
    return profile


@pytest.mark.parametrize(("module", "linear_fusion"), VARIANTS)
def test_onnx_with_the_enroll_graph_matches_torch(module: str, linear_fusion: bool) -> None:
    model = calibrated(module, linear_fusion=linear_fusion).eval()
    path = exported(module, linear_fusion=linear_fusion)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, *model.input_shape, generator=generator)
    anchor_images = torch.randn(len(model.config.anchors), *model.input_shape, generator=generator)
    feeds = {"images": x.numpy()}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if module != "none":
        enroll = ort.InferenceSession(str(enroll_graph_path(path)), providers=["CPUExecutionProvider"])
        (memory,) = enroll.run(None, {"anchor_images": anchor_images.numpy()})
        anchor_input = AnchorInput.from_metadata(session.get_modelmeta().custom_metadata_map)
        assert anchor_input is not None and memory.shape == (anchor_input.size,)
        feeds.update(anchor_input.feeds(memory))  # the per-role parts: anchor_memory_eye, anchor_memory_mouth
        model.set_anchors(model.enroll(anchor_images))
    else:
        assert not enroll_graph_path(path).exists()  # the uncalibrated reference is a plain one-input graph
    assert [i.name for i in session.get_inputs()] == list(feeds)
    got = session.run(None, feeds)
    with torch.no_grad():
        features = model.forward_features(x)
        out = model.forward_head(features)
    for name, a, b in zip(OUTPUT_NAMES, got, [out.expression, out.free_expression, out.gaze, features], strict=True):
        assert a.shape == tuple(b.shape), name
        assert np.abs(a - b.numpy()).max() <= 1e-4, (module, name)
    if module != "none":  # the memory matters: other anchors give other outputs
        other = enroll.run(None, {"anchor_images": (anchor_images + 1.0).numpy()})[0]
        changed = session.run(None, {**feeds, **anchor_input.feeds(other)})[3]
        assert np.abs(changed - got[3]).max() > 1e-3


def test_metadata_describes_the_anchor_input() -> None:
    path = exported()
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert set(meta) == (set(METADATA_KEYS) - {"egoface.feature_statistics"}) | set(ANCHOR_METADATA_KEYS)
    layout = json.loads(meta["egoface.anchor_memory"])
    model = calibrated("late_fusion")
    # late fusion's memory is the anchor half of its 1x1 conv: per role (k=2 cameras, c, h, w)
    shapes = [(2, *model.anchor_feature_shape(role)[1:]) for role in ("eye", "mouth")]
    assert layout["roles"] == [
        {"role": r, "shape": list(s), "input": f"anchor_memory_{r}"}
        for r, s in zip(("eye", "mouth"), shapes, strict=True)
    ]
    assert layout["size"] == sum(int(np.prod(s)) for s in shapes)
    assert layout["anchors"] == list(ANCHORS) and layout["module"] == "late_fusion"
    assert layout["enroll_graph"] == f"{path.stem}.enroll.onnx"
    assert layout["enroll_input_shape"] == [2, 4, 1, SIZE, SIZE]
    enroll = ort.InferenceSession(str(enroll_graph_path(path)), providers=["CPUExecutionProvider"])
    assert enroll.get_modelmeta().custom_metadata_map["egoface.model_id"] == meta["egoface.model_id"]
    # the id follows the weights, not the file
    assert export_onnx(calibrated("late_fusion", seed=1), _DIR / "other.onnx", "x") != path
    other = AnchorInput.from_metadata(
        ort.InferenceSession(str(_DIR / "other.onnx"), providers=["CPUExecutionProvider"]).get_modelmeta()
        .custom_metadata_map
    )  # fmt: skip
    assert other is not None and other.model_id != meta["egoface.model_id"]


def test_anchor_image_is_the_median_frame() -> None:
    enroller = AnchorEnroller(exported())
    rng = np.random.default_rng(3)
    a, b = textured(rng, 90), textured(rng, 160)
    np.testing.assert_array_equal(enroller.anchor_image([a, b, a]), enroller.anchor_image([a]))
    assert enroller.anchor_image([a]).shape == (4, 1, SIZE, SIZE)
    with pytest.raises(ValueError, match="no frames captured for anchors \\['big_smile'\\]"):
        enroller.enroll({"neutral": [a]})


def test_tracker_feeds_the_profile_memory_and_matches_torch(tmp_path) -> None:
    path = exported()
    profile = enrolled_profile(path)
    rng = np.random.default_rng(5)
    frame = textured(rng, 120)
    with Tracker.create(TrackerOptions(path, profile=profile)) as tracker:
        got = tracker.infer(frame)
        result = tracker.track(frame, 0.0)
        views = np.stack([v for v in got.views if v is not None])
        x = torch.from_numpy(tracker.spec.normalize(views))
    assert result.expression.shape == (53,) and result.gaze.shape == (2, 2)
    # torch with the same anchor images (the enroller's median frames)
    enroller = AnchorEnroller(path)
    rng = np.random.default_rng(0)
    captured = {anchor: [textured(rng, 80 + 40 * i) for _ in range(3)] for i, anchor in enumerate(ANCHORS)}
    model = calibrated("late_fusion").eval()
    anchor_images = np.stack([enroller.anchor_image(captured[name]) for name in ANCHORS])
    model.set_anchors(model.enroll(torch.from_numpy(anchor_images)))
    with torch.no_grad():
        features = model.forward_features(x)
        expression = model.forward_head(features).expression
    assert np.abs(got.features - features[0].numpy()).max() < 1e-4
    assert np.abs(got.expression - expression[0].numpy()).max() < 1e-4
    # saved and loaded through the profile store, the tracker finds it by name
    ProfileStore(tmp_path).save(profile)
    with Tracker.create(TrackerOptions(path, profile="alice", profile_dir=tmp_path)) as tracker:
        np.testing.assert_array_equal(tracker.infer(frame).features, got.features)


def test_tracker_refuses_without_a_matching_profile(tmp_path) -> None:
    path = exported()
    with pytest.raises(ValueError, match=r"anchor-calibrated model .*egoface enroll --profile NAME"):
        Tracker.create(TrackerOptions(path))
    with pytest.raises(ValueError, match=r"profile 'bob' .*has no enrolled anchors.*egoface enroll --profile bob"):
        Tracker.create(TrackerOptions(path, profile="bob", profile_dir=tmp_path))
    other = exported("late_fusion", seed=1)  # same architecture, other weights
    with pytest.raises(ValueError, match=r"enrolled with other models only: nano-late_fusion \("):
        Tracker.create(TrackerOptions(path, profile=enrolled_profile(other)))
    with pytest.raises(ValueError, match="is not an anchor-calibrated model"):
        AnchorEnroller(exported("none"))


def test_enroll_graph_must_sit_beside_the_model_and_match_it(tmp_path) -> None:
    path = tmp_path / "m.onnx"  # renamed: the metadata still names the enrollment graph written with it
    path.write_bytes(exported().read_bytes())
    name = enroll_graph_path(exported()).name
    with pytest.raises(FileNotFoundError, match=f"needs its enrollment graph .*{name}"):
        AnchorEnroller(path)
    (tmp_path / name).write_bytes(enroll_graph_path(exported("late_fusion", seed=1)).read_bytes())  # another's
    with pytest.raises(ValueError, match="belongs to model"):
        AnchorEnroller(path)


def test_enroll_command_stores_the_anchor_memory(tmp_path, capsys) -> None:
    store = tmp_path / "store"
    DatasetStore(store).write_recording(make_recording(frames=20, domain="unlabeled"))
    path = exported()
    argv = [
        "enroll", "--source", f"store:{store}", "--profile", "carol", "--model", str(path), "--frames", "4",
        "--countdown", "0", "--profiles", str(tmp_path / "p"), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["anchors"] == {"neutral": 4, "big_smile": 4}  # the model's anchors by default
    profile = ProfileStore(tmp_path / "p").load("carol")
    memory = profile.memories[result["anchor_memory"]["model_id"]]
    assert memory.anchors == ANCHORS and memory.frames == 4 and memory.memory.size == result["anchor_memory"]["size"]
    assert profile.neutral is not None
    with Tracker.create(TrackerOptions(path, profile="carol", profile_dir=tmp_path / "p")) as tracker:
        assert tracker.anchor_input is not None
    argv[argv.index("--json")] = "--anchors=neutral"
    assert main(argv) == 2 and "lacks ['big_smile']" in capsys.readouterr().err


def test_the_calibrated_runtime_runs_without_torch() -> None:
    path = exported()
    code = f"""
import sys
import numpy as np
from egoface.runtime.calibration import Profile
from egoface.runtime.tracker import AnchorEnroller, Tracker, TrackerOptions
rng = np.random.default_rng(0)
frames = lambda: {{c: rng.integers(0, 255, (40, 36), dtype=np.uint8) for c in
                  ("eye_left", "eye_right", "mouth_left", "mouth_right")}}
memory = AnchorEnroller({str(path)!r}).enroll({{"neutral": [frames()], "big_smile": [frames()]}})
profile = Profile("p", memories={{memory.model_id: memory}})
with Tracker.create(TrackerOptions({str(path)!r}, profile=profile)) as tracker:
    assert tracker.track(frames(), 0.0).expression.shape == (53,)
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout[:500] + result.stderr[-2000:]


@pytest.mark.parametrize("linear_fusion", [False, True])
def test_anchor_overhead_times_both_trackers_and_leaves_the_model_as_it_was(linear_fusion: bool) -> None:
    """The timing itself is measured by `egoface ablate calibration` and `bench latency`; here that the measurement
    runs for both fusions, reports both medians, and leaves the model's enrolled anchors as they were."""
    model = calibrated("late_fusion", linear_fusion=linear_fusion)
    timing = measure_anchor_overhead(model, threads=1, frames=4)
    with_p50, without_p50 = timing["with_anchors"]["latency_ms_p50"], timing["without_anchors"]["latency_ms_p50"]
    assert with_p50 > 0 and without_p50 > 0
    assert timing["anchor_overhead"] == pytest.approx(with_p50 / without_p50 - 1.0)
    assert model.enrolled_anchors is None


@pytest.mark.slow
@pytest.mark.parametrize("linear_fusion", [False, True])
def test_bench_latency_measures_the_anchor_overhead(linear_fusion: bool, tmp_path: Path, capsys) -> None:
    model = tmp_path / "model.pt"
    save_model(calibrated("late_fusion", linear_fusion=linear_fusion), model, step=1)
    argv = ["bench", "latency", "--model", str(model), "--frames", "10", "--native-size", "32", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for case in (result, result["native"]):
        timing = case["anchor_timing"]
        with_p50, without_p50 = timing["with_anchors"]["latency_ms_p50"], timing["without_anchors"]["latency_ms_p50"]
        assert case["anchor_overhead"] == pytest.approx(with_p50 / without_p50 - 1.0)
        assert with_p50 > 0 and without_p50 > 0
    assert result["native"]["input_size"] == [32, 32]


def test_bench_soak_enrolls_a_calibrated_model_from_its_synthetic_subject(capsys) -> None:
    """A calibrated model cannot track without a profile; the soak enrolls one from the live subject's clip."""
    argv = ["bench", "soak", "--model", str(exported()), "--frames", "40", "--size", "32", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outputs"] + result["dropped"] == 40 and result["outputs"] > 0


def test_model_file_exports_a_calibrated_run_with_its_enroll_graph(tmp_path) -> None:
    save_model(calibrated("pooling"), tmp_path / "run" / "model.pt", step=1)
    first = model_file(str(tmp_path / "run"), cache=tmp_path / "cache")
    enroll = enroll_graph_path(first)
    assert enroll.is_file()
    enroll.unlink()  # a cache missing half of the pair is exported again
    assert model_file(str(tmp_path / "run"), cache=tmp_path / "cache") == first and enroll.is_file()
    assert AnchorEnroller(first).anchor_input.module == "pooling"


def test_feature_statistics_read_each_frame_against_its_subjects_anchors(tmp_path) -> None:
    from egoface.runtime.export import feature_statistics

    store = tmp_path / "store"
    for index in range(2):  # the helper recordings hold the anchor segments neutral and jaw_open_max
        DatasetStore(store).write_recording(make_recording(subject=f"s{index}", frames=30, seed=index))
    model = random_calibrated("late_fusion", ("neutral", "jaw_open_max"), SIZE).eval()
    ood = feature_statistics(model, store, max_frames=60)
    assert [block.name for block in ood.blocks] == list(model.feature_cameras) == [
        "eye_left", "eye_right", "mouth_left", "mouth_right"
    ]  # fmt: skip
    assert ood.blocks[0].statistics.frames == 60 and model.enrolled_anchors is None  # nothing left enrolled
    # the features are those of each subject's enrolled encoder: the statistics' mean equals their mean
    from egoface.data import HeadsetDataset
    from egoface.models import normalize_images

    config = model.config
    dataset = HeadsetDataset(
        store, cameras=config.cameras, resolution=(SIZE, SIZE), flip_left=bool(config.flipped), anchors=config.anchors
    )
    rows = []
    for index in range(len(dataset)):
        sample = dataset[index]
        anchors = torch.stack([sample.anchor_images[name] for name in model.config.anchors])
        model.set_anchors(model.enroll(normalize_images(anchors, model.config)))
        with torch.no_grad():
            rows.append(model.forward_features(normalize_images(sample.images[None], model.config))[0].numpy())
    width = model.feature_dim
    np.testing.assert_allclose(ood.blocks[3].statistics.mean, np.mean(rows, axis=0)[3 * width :], atol=1e-4)
