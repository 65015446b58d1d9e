"""The training Dataset (typed samples, left flip, resize, anchors, filters, collate) and the augmentations."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from egoface.data import AugmentConfig, DatasetStore, HeadsetDataset, collate, cutmix
from egoface.data.augment import affine_warp, augment_views, sample_affine, sensor_jitter, warp_points
from test_data_helpers import CAMERAS, make_recording


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    store = DatasetStore(root)
    store.write_recording(make_recording(subject="s000", frames=40, seed=0))
    store.write_recording(make_recording(subject="s001", frames=30, seed=1, split="test"))
    store.write_recording(make_recording(subject="r000", frames=20, seed=2, domain="real"))
    store.write_recording(make_recording(subject="u000", frames=10, seed=3, domain="unlabeled"))
    return root


def test_sample_shapes_dtypes_and_labels(store_root: Path) -> None:
    ds = HeadsetDataset(store_root, resolution=(48, 40))
    assert len(ds) == 40 and {r.subject for r in ds.recordings} == {"s000"}
    sample = ds[7]
    assert sample.images.shape == (4, 1, 48, 40) and sample.images.dtype == torch.float32
    assert float(sample.images.min()) >= 0.0 and float(sample.images.max()) <= 1.0
    assert sample.camera_names == CAMERAS and (sample.subject, sample.frame, sample.domain) == ("s000", 7, "synthetic")
    want = make_recording(subject="s000", frames=40, seed=0)
    torch.testing.assert_close(sample.expression, torch.from_numpy(want.labels.expression[7]))
    torch.testing.assert_close(sample.gaze, torch.from_numpy(want.labels.gaze[7]))
    assert sample.head_rotation.shape == (3, 3) and sample.head_translation.shape == (3,)
    assert sample.keypoints.shape == (4, 5, 2) and sample.keypoint_visibility.dtype == torch.bool
    assert sample.ood == bool(want.ood[7])


def test_splits_and_domains_filter_by_subject(store_root: Path) -> None:
    """A train dataset never yields a test subject; the test dataset holds only test subjects."""
    train = HeadsetDataset(store_root, domains=("synthetic", "real", "unlabeled"), splits=("train",))
    test = HeadsetDataset(store_root, splits=("test",))
    assert {r.subject for r in train.recordings} == {"s000", "r000", "u000"}
    assert {r.subject for r in test.recordings} == {"s001"}
    assert {train[i].split for i in range(0, len(train), 7)} == {"train"}
    with pytest.raises(ValueError, match="domains must be a non-empty subset"):
        HeadsetDataset(store_root, domains=("oracle",))


def test_left_cameras_are_flipped_and_keypoints_follow(tmp_path: Path) -> None:
    """A left image with a bright left half reads with a bright right half; right cameras are untouched; a
    keypoint on a bright dot still lands on the dot after flip and resize."""
    data = make_recording(frames=3, size=(20, 30), seed=9)
    images = {c: np.zeros((3, 20, 30), np.uint8) for c in CAMERAS}
    for camera in CAMERAS:
        images[camera][0, :, :15] = 255
        images[camera][1, 6, 4] = 255  # a dot at x=4, y=6
    keypoints = {c: np.zeros((3, 5, 2), np.float32) for c in CAMERAS}
    for camera in CAMERAS:
        keypoints[camera][1, 0] = (4, 6)
    labels = dataclasses.replace(data.labels, keypoints=keypoints)
    segments = [{"name": "neutral", "kind": "expression", "start_frame": 0, "stop_frame": 3, "anchor": "neutral"}]
    DatasetStore(tmp_path).write_recording(dataclasses.replace(data, images=images, labels=labels, segments=segments))
    same = HeadsetDataset(tmp_path, resolution=(20, 30))
    halves = same[0].images[:, 0]
    left, right = CAMERAS.index("eye_left"), CAMERAS.index("eye_right")
    assert halves[left, :, 15:].min() == 1.0 and halves[left, :, :15].max() == 0.0
    assert halves[right, :, :15].min() == 1.0 and halves[right, :, 15:].max() == 0.0
    for resolution in ((20, 30), (40, 60)):
        sample = HeadsetDataset(tmp_path, resolution=resolution)[1]
        for c, camera in enumerate(CAMERAS):
            x, y = sample.keypoints[c, 0].tolist()
            image = sample.images[c, 0]
            peak = divmod(int(image.argmax()), image.shape[1])
            assert abs(peak[1] - x) <= 0.5 and abs(peak[0] - y) <= 0.5, (camera, resolution, (x, y), peak)
        expected_x = (30 - 1 - 4 + 0.5) * resolution[1] / 30 - 0.5
        assert sample.keypoints[CAMERAS.index("mouth_left"), 0, 0] == pytest.approx(expected_x)


def test_anchor_frames_and_images(store_root: Path) -> None:
    ds = HeadsetDataset(store_root, resolution=(24, 32), anchors=("neutral", "jaw_open_max"))
    sample = ds[0]
    assert sample.anchor_frames == {"neutral": ("script", 5), "jaw_open_max": ("script", 24)}
    torch.testing.assert_close(sample.anchor_images["jaw_open_max"], ds[24].images)
    jittery = AugmentConfig(noise_std=0.05, black_level=0.1)
    augmented = HeadsetDataset(store_root, resolution=(24, 32), anchors=("neutral", "jaw_open_max"), augment=jittery)
    clean, jittered = sample.anchor_images, augmented[30].anchor_images
    assert torch.equal(jittered["neutral"], augmented[30].anchor_images["neutral"])  # seeded by (seed, epoch, index)
    shift = {name: (jittered[name] - clean[name]).mean(dim=(1, 2, 3)) for name in clean}  # per camera
    assert float(shift["neutral"].abs().min()) > 0.005  # every camera's anchors carry an offset (noise averages out)
    torch.testing.assert_close(shift["neutral"], shift["jaw_open_max"], atol=0.01, rtol=0)  # one draw per camera
    assert float((jittered["neutral"] - clean["neutral"] - shift["neutral"].view(-1, 1, 1, 1)).std()) > 0.01
    with pytest.raises(ValueError, match=r"no segment for some of the anchors .*\(missing: neutral\).*capture scripts"):
        HeadsetDataset(store_root, domains=("unlabeled",), anchors=("neutral",))


def test_collate_mixes_labelled_and_unlabelled_samples(store_root: Path) -> None:
    ds = HeadsetDataset(store_root, domains=("synthetic", "real"), resolution=(16, 16), anchors=("neutral",))
    assert [(r.subject, r.frames) for r in ds.recordings] == [("s000", 40), ("r000", 20)]
    batch = collate([ds[40], ds[3]])
    assert batch.images.shape == (2, 4, 1, 16, 16)
    assert batch.label_mask.tolist() == [False, True] and batch.domains == ["real", "synthetic"]
    assert batch.expression.shape == (2, 53) and float(batch.expression[0].abs().sum()) == 0.0
    assert not bool(batch.keypoint_visibility[0].any()) and batch.anchor_images["neutral"].shape == (2, 4, 1, 16, 16)


def test_dataloader_workers_give_the_same_augmented_batches(store_root: Path) -> None:
    """Augmentation depends on (seed, epoch, index) only: 2 worker processes reproduce the in-process batches."""
    ds = HeadsetDataset(store_root, resolution=(16, 16), augment=AugmentConfig(), seed=5)
    inline = [b.images for b in DataLoader(ds, batch_size=8, collate_fn=collate)]
    workers = [b.images for b in DataLoader(ds, batch_size=8, collate_fn=collate, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(inline, workers, strict=True))
    first = ds[3].images
    assert torch.equal(first, ds[3].images)
    ds.set_epoch(1)
    assert not torch.equal(first, ds[3].images)
    plain = HeadsetDataset(store_root, resolution=(16, 16))[3].images
    assert plain.shape == first.shape and not torch.equal(plain, first)


def test_cached_images_give_the_same_samples_and_are_read_up_front(store_root: Path) -> None:
    """`cache_images` reads every recording's frames into memory at construction, prepared at the dataset's
    resolution; at the stored size (24 x 32) samples (anchors included) and worker-loaded batches equal those read
    frame by frame from disk, resized they differ by at most the 8-bit rounding of the cache."""
    anchors = ("neutral", "jaw_open_max")
    from_disk = HeadsetDataset(store_root, resolution=(24, 32), anchors=anchors)
    cached = HeadsetDataset(store_root, resolution=(24, 32), anchors=anchors, cache_images=True)
    assert len(cached._open) == len(cached.recordings)
    for handle, ref in zip(cached._open.values(), cached.recordings, strict=True):
        assert handle.views is not None and handle.views.dtype == torch.uint8
        assert handle.views.shape == (ref.frames, len(cached.cameras), 1, 24, 32)
    for index in (0, 17, len(cached) - 1):
        a, b = from_disk[index], cached[index]
        assert torch.equal(a.images, b.images)
        assert all(torch.equal(a.anchor_images[n], b.anchor_images[n]) for n in anchors)
    in_workers = [b.images for b in DataLoader(cached, batch_size=8, collate_fn=collate, num_workers=2)]
    inline = [b.images for b in DataLoader(from_disk, batch_size=8, collate_fn=collate)]
    assert all(torch.equal(a, b) for a, b in zip(inline, in_workers, strict=True))
    resized_from_disk = HeadsetDataset(store_root, resolution=(16, 16), anchors=anchors)
    resized_cached = HeadsetDataset(store_root, resolution=(16, 16), anchors=anchors, cache_images=True)
    for index in (0, 17, len(cached) - 1):
        a, b = resized_from_disk[index], resized_cached[index]
        assert a.images.shape == b.images.shape == (len(cached.cameras), 1, 16, 16)
        assert 0 < (a.images - b.images).abs().max() <= 0.5 / 255 + 1e-6
        assert all((a.anchor_images[n] - b.anchor_images[n]).abs().max() <= 0.5 / 255 + 1e-6 for n in anchors)


def _dot_image(x: float, y: float, size: int = 65) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    image[0, 0, int(y), int(x)] = 1.0
    return image


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    weights = image[0, 0]
    rows, cols = torch.meshgrid(torch.arange(weights.shape[0]), torch.arange(weights.shape[1]), indexing="ij")
    return float((weights * cols).sum() / weights.sum()), float((weights * rows).sum() / weights.sum())


@pytest.mark.parametrize(("angle", "scale"), [(90.0, 1.0), (15.0, 1.1), (-15.0, 1 / 1.1), (0.0, 1.1)])
def test_rotation_and_scale_move_a_dot_as_documented(angle: float, scale: float) -> None:
    """A dot 20 px right of the centre lands at centre + scale * R(angle) @ (20, 0) (clockwise on screen)."""
    centre = 32.0
    image = _dot_image(centre + 20, centre)
    warped = affine_warp(image, torch.tensor([angle]), torch.tensor([scale]))
    a = math.radians(angle)
    expected = (centre + scale * 20 * math.cos(a), centre + scale * 20 * math.sin(a))
    got = _centroid(warped)
    assert got == pytest.approx(expected, abs=0.3)
    points = warp_points(torch.tensor([[[centre + 20, centre]]]), torch.tensor([angle]), torch.tensor([scale]), 65, 65)
    assert tuple(points[0, 0].tolist()) == pytest.approx(expected, abs=1e-4)


def test_rotation_on_a_non_square_image_keeps_distances() -> None:
    image = torch.zeros(1, 1, 41, 81)
    image[0, 0, 20, 55] = 1.0  # 15 px right of the centre (40, 20)
    got = _centroid(affine_warp(image, torch.tensor([90.0]), torch.tensor([1.0])))
    assert got == pytest.approx((40.0, 35.0), abs=0.3)


def test_the_identity_warp_skips_resampling_and_matches_it() -> None:
    """Angle 0 and scale 1 everywhere: the images come back as they are (no grid_sample), which is what
    resampling at the pixel centres gives up to rounding; one view turned is resampled."""
    images = torch.rand(3, 1, 24, 32, generator=torch.Generator().manual_seed(0))
    identity = affine_warp(images, torch.zeros(3), torch.ones(3))
    assert identity is images
    resampled = torch.nn.functional.grid_sample(
        images, torch.nn.functional.affine_grid(torch.eye(2, 3).expand(3, 2, 3), [3, 1, 24, 32], align_corners=False),
        align_corners=False,
    )  # fmt: skip
    assert torch.allclose(identity, resampled, atol=1e-6)
    one_turned = affine_warp(images, torch.tensor([0.0, 10.0, 0.0]), torch.ones(3))
    assert not torch.allclose(one_turned[1], images[1], atol=1e-3)


def test_random_parameters_stay_within_the_papers_bounds() -> None:
    angle, scale = sample_affine(5000, AugmentConfig(), torch.Generator().manual_seed(0))
    assert float(angle.abs().max()) <= 15.0 and float(angle.abs().max()) > 14.5
    assert float(scale.min()) >= 1 / 1.1 - 1e-6 and float(scale.max()) <= 1.1 + 1e-6
    assert float(scale.max()) > 1.09 and float(scale.min()) < 1 / 1.09


def test_augment_views_keeps_shapes_is_seeded_and_moves_keypoints_with_the_image() -> None:
    images = torch.zeros(4, 1, 65, 65)
    keypoints = torch.zeros(4, 1, 2)
    for c in range(4):
        x, y = 20 + 6 * c, 40 - 4 * c
        images[c, 0, y, x] = 1.0
        keypoints[c, 0] = torch.tensor([x, y])
    visibility = torch.ones(4, 1, dtype=torch.bool)
    config = AugmentConfig(brightness=0.0, gamma=0.0)
    out, moved, seen = augment_views(images, config, torch.Generator().manual_seed(1), keypoints, visibility)
    again, _, _ = augment_views(images, config, torch.Generator().manual_seed(1), keypoints, visibility)
    assert out.shape == images.shape and torch.equal(out, again) and bool(seen.all())
    for c in range(4):
        assert _centroid(out[c : c + 1]) == pytest.approx(tuple(moved[c, 0].tolist()), abs=0.3)
    other, _, _ = augment_views(images, config, torch.Generator().manual_seed(2), keypoints, visibility)
    assert not torch.equal(out, other)


def test_sensor_jitter_blurs_offsets_and_adds_noise_within_its_ranges() -> None:
    generator = torch.Generator().manual_seed(4)
    step = torch.zeros(64, 1, 33, 33)
    step[..., 17:] = 0.8  # a vertical edge between columns 16 and 17
    assert torch.equal(sensor_jitter(step, AugmentConfig(), generator), step)  # ranges at 0: unchanged
    blurred = sensor_jitter(step, AugmentConfig(blur_sigma_px=1.5), generator)
    assert torch.allclose(blurred[..., :, 2], step[..., :, 2]) and torch.allclose(blurred[..., :, 30], step[..., :, 30])
    assert bool((blurred[:, 0, 16, 16] < 0.4).all()) and float(blurred[:, 0, 16, 16].max()) > 0.05  # some spread
    flat = torch.full((2000, 1, 8, 8), 0.5)
    lifted = sensor_jitter(flat, AugmentConfig(black_level=0.1), generator)
    offsets = lifted.mean(dim=(1, 2, 3)) - 0.5
    assert (
        float(offsets.min()) >= 0
        and float(offsets.max()) <= 0.1
        and float(offsets.mean()) == pytest.approx(0.05, abs=0.005)
    )
    noisy = sensor_jitter(flat, AugmentConfig(noise_std=0.04), generator)
    stds = noisy.std(dim=(1, 2, 3))
    assert float(stds.max()) < 0.055 and float(stds.mean()) == pytest.approx(0.02, abs=0.002)  # std ~ U(0, 0.04)
    with pytest.raises(ValueError, match="noise_std"):
        AugmentConfig(noise_std=-0.1)


def test_cutmix_pastes_exactly_three_patches_from_another_sample() -> None:
    batch, cameras = 5, 4
    images = torch.arange(1, batch + 1, dtype=torch.float32).view(batch, 1, 1, 1, 1).expand(batch, cameras, 1, 32, 48)
    mixed, boxes, source = cutmix(images.clone(), AugmentConfig(), torch.Generator().manual_seed(3))
    assert mixed.shape == images.shape and boxes.shape == (batch, cameras, 3, 4)
    assert bool((source != torch.arange(batch)).all())
    for b in range(batch):
        for c in range(cameras):
            union = torch.zeros(32, 48, dtype=torch.bool)
            for y0, x0, y1, x1 in boxes[b, c].tolist():
                assert 0 <= y0 < y1 <= 32 and 0 <= x0 < x1 <= 48
                union[y0:y1, x0:x1] = True
            changed = mixed[b, c, 0] != images[b, c, 0]
            assert torch.equal(changed, union)
            assert bool((mixed[b, c, 0][union] == float(source[b] + 1)).all())
    again = cutmix(images.clone(), AugmentConfig(), torch.Generator().manual_seed(3))[0]
    assert torch.equal(mixed, again)
    with pytest.raises(ValueError, match="at least 2"):
        cutmix(images[:1], AugmentConfig(), torch.Generator())
