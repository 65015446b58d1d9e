"""A 2D face-landmark detector for headset camera images: the keypoint source of the FLNet baseline that reads
*detected* keypoints (Universal Table 1), `flnet_detected` in `egoface.train.baselines`.

    detector = KeypointDetector(KeypointDetectorConfig(get_backbone_config("resnet_tiny"), cameras, 96))
    out = detector(detector.config.normalize(images))   # (B, C, 1, H, W) in [0, 1] -> points (B, C, L, 2) px
    save_detector(detector, "RUN/detector.pt", steps); detector = load_detector("RUN/detector.pt")

One backbone, shared by every camera, reads each camera image as stored: not mirrored as the trackers' left cameras
are, since a mirrored left eye looks like a right one while the landmark index says which side a landmark is on. One
linear head per camera reads the backbone's pooled features and gives, for each of the L landmarks, (x, y) px at
`input_size` ((0, 0) is the centre of the top-left pixel) and a visibility logit (> 0: visible). A head on the
whole, unpooled feature map did no better in a small trial (10 training subjects, 600 steps at 96x96; error of the
displacement from the neutral frame on 3 held-out subjects 0.52-0.61 px unpooled, 0.43-0.57 px pooled, for true
displacements of 0.67-0.70 px). The head predicts offsets from the image centre in units of the image size, from
small initial weights, so an untrained detector answers near the centre.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from egoface.models.backbones import Backbone
from egoface.models.config import BackboneConfig, _tuples, backbone_config_from_dict
from egoface.models.files import atomic_torch_save
from egoface.models.registry import backbone_from_config

__all__ = ["KeypointDetector", "KeypointDetectorConfig", "KeypointOutput", "load_detector", "save_detector"]

_HEAD_INIT_STD = 0.01  # initial head weights x sqrt(fan-in): offsets of about 1% of the image size at the start


@dataclass(frozen=True)
class KeypointDetectorConfig:
    """Everything needed to rebuild a detector and feed it; round-trips through JSON with its weights.

    backbone: the image encoder's configuration (`get_backbone_config(name)`; `in_chans` 1). cameras: the camera
    order of the input, one head each. num_keypoints: landmarks L per camera. input_size: (H, W) px the images are
    resized to (`egoface.data.dataset.prepare_views(..., flip_left=False)`). Input normalization as the trackers':
    `x = (pixel / 255 - pixel_mean) / pixel_std`.
    """

    backbone: BackboneConfig
    cameras: tuple[str, ...]
    num_keypoints: int
    input_size: tuple[int, int] = (96, 96)
    pixel_mean: float = 0.5
    pixel_std: float = 0.25

    def __post_init__(self) -> None:
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"KeypointDetectorConfig.cameras must be non-empty and unique, got {self.cameras}")
        if self.num_keypoints < 1 or len(self.input_size) != 2 or min(self.input_size) < 1 or self.pixel_std <= 0:
            raise ValueError(
                "KeypointDetectorConfig needs num_keypoints >= 1, input_size (H, W) > 0 and pixel_std > 0; got "
                f"{self.num_keypoints}, {self.input_size}, {self.pixel_std}"
            )
        if self.backbone.in_chans != 1:
            raise ValueError(f"the detector reads monochrome images: backbone in_chans must be 1, got {self.backbone}")

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, 1, H, W) in [0, 1] (pixel / 255) -> the detector's input, `(images - mean) / std`."""
        return (images - self.pixel_mean) / self.pixel_std

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> KeypointDetectorConfig:
        values = _tuples(json.loads(text), cls)
        values["backbone"] = backbone_config_from_dict(values["backbone"])
        return cls(**values)


class KeypointOutput(NamedTuple):
    """points: (B, C, L, 2) px at the detector's input size; visibility_logits: (B, C, L), > 0 means visible."""

    points: torch.Tensor
    visibility_logits: torch.Tensor


class KeypointDetector(nn.Module):
    """Landmarks and their visibility in every camera image; see the module docstring and `KeypointDetectorConfig`.

    forward: normalized images (B, C, 1, H, W), cameras in `config.cameras` order, not mirrored, at
    `config.input_size` -> `KeypointOutput(points (B, C, L, 2) px, visibility_logits (B, C, L))`;
    `forward = forward_head(forward_features(images))` as for the trackers.
    """

    image_size: torch.Tensor  # (2,) (W, H) px

    def __init__(self, config: KeypointDetectorConfig) -> None:
        super().__init__()
        self.config = config
        backbone = backbone_from_config(config.backbone)
        assert isinstance(backbone, Backbone)
        self.backbone = backbone
        self.num_features = backbone.num_features
        heads = [nn.Linear(self.num_features, config.num_keypoints * 3) for _ in config.cameras]
        for head in heads:
            nn.init.normal_(head.weight, std=_HEAD_INIT_STD / self.num_features**0.5)
            nn.init.zeros_(head.bias)
        self.heads = nn.ModuleList(heads)
        height, width = config.input_size
        self.register_buffer("image_size", torch.tensor([width, height], dtype=torch.float32), persistent=False)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, 1, H, W) normalized -> (B, C, num_features), each camera's pooled backbone features."""
        expected = (len(self.config.cameras), 1, *self.config.input_size)
        if not isinstance(images, torch.Tensor) or images.dim() != 5 or tuple(images.shape[1:]) != expected:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"the keypoint detector expects images (B, {', '.join(map(str, expected))}) for "
                             f"cameras {self.config.cameras}, got {got}")  # fmt: skip
        features = self.backbone.forward_features(images.flatten(0, 1))  # (B C, F)
        return features.unflatten(0, tuple(images.shape[:2]))

    def forward_head(self, features: torch.Tensor) -> KeypointOutput:
        """features: (B, C, num_features) -> `KeypointOutput`."""
        raw = torch.stack([head(features[:, i]) for i, head in enumerate(self.heads)], dim=1)  # (B, C, 3 L)
        raw = raw.unflatten(-1, (self.config.num_keypoints, 3))  # (B, C, L, 3): offset x, y, visibility logit
        centre = (self.image_size - 1) / 2
        return KeypointOutput(centre + raw[..., :2] * self.image_size, raw[..., 2])

    def forward(self, images: torch.Tensor) -> KeypointOutput:
        return self.forward_head(self.forward_features(images))


def save_detector(detector: KeypointDetector, path: str | os.PathLike[str], steps: int) -> None:
    """Write a detector file (`{"detector_config": JSON, "state_dict", "steps": training steps}`), atomically."""
    atomic_torch_save(
        {"detector_config": detector.config.to_json(), "state_dict": detector.state_dict(), "steps": steps}, Path(path)
    )


def load_detector(path: str | os.PathLike[str]) -> KeypointDetector:
    """A detector file as a detector in eval mode on the CPU, its architecture rebuilt from the saved config."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no keypoint detector at {file}; `egoface train --model flnet_detected` writes one")
    try:
        data: Any = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(f"{file} is not a keypoint detector file (a torch file): {error}") from None
    if not isinstance(data, dict) or not {"detector_config", "state_dict"} <= set(data):
        raise ValueError(f"{file} is not a keypoint detector file (expected detector_config and state_dict)")
    detector = KeypointDetector(KeypointDetectorConfig.from_json(data["detector_config"]))
    detector.load_state_dict(data["state_dict"])
    return detector.eval()
