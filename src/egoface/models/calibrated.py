"""The anchor-calibrated universal encoder (Universal Sec. 4.3.1, Fig. 7, Eqs. 7-9) and its expression critic.

Two branches, upper face (eye cameras) and lower face (mouth cameras). Each has an expression feature extractor
phi_exp, shared by the left and right camera of its role (left images arrive flipped), applied to the current frame
and to the M anchor frames of the user; a calibration module phi_cal mixes the current feature map with the anchors'
maps of the same camera; the rest of the backbone (the fused tail) pools each camera to a feature vector. Then

    z_U = [eye_left, eye_right features], z_L = [mouth_left, mouth_right features]
    free expression (45) = f_fuse([z_U, z_L]),  gaze (2, 2) deg = f_gaze(z_U)       (2-layer MLPs)

The backbone is split as the paper splits its MobileNetV3, before its last block: phi_exp = stem + body[:-n], tail =
body[-n:] (n = 2 for a MobileNetV3: the last block and the 1x1 head conv; n = 1 for a ResNet: its last stage).
Fusing that late keeps the per-frame cost of the anchors small: the fused map is the network's second smallest.
Calibration modules
(`CALIBRATION_MODULES`, Table 3), each `(current (N, c, h, w), anchors (N, M, c, h, w)) -> (N, c, h, w)`:

- `late_fusion` (default): channel concatenation [current, anchor_1 .. anchor_M], a 1x1 conv (with bias) and ReLU
  back to c channels, then the tail's convolution blocks. The conv starts as the identity on the current map and
  zero on the anchors, so training starts from the encoder without anchors (a randomly initialized fusion, in
  which the current frame is one input in 1 + M, trained to near-neutral outputs); with `linear_fusion`, the conv
  without the ReLU, folded into the tail's first block (`_FoldedFusion`);
- `cross_attention`: current tokens (h*w) are queries, the anchors' M*h*w tokens keys and values;
- `self_attention`: one pre-norm Transformer encoder layer over the concatenated current and anchor tokens, the
  current tokens kept;
- `pooling`: element-wise max over the anchors (PointNet, Qi et al.), concatenated with current, the same 1x1 conv
  and ReLU;
- `early_fusion`: the raw current and anchor images concatenated as input channels of the whole backbone
  (phi_exp is the identity, so the "anchor features" cached at enrollment are the normalized anchor images);
- `none`: the same encoder without anchors (the uncalibrated reference).

Attention tokens carry a learned per-location embedding but no anchor index, so `cross_attention`,
`self_attention` and `pooling` are invariant to the order of the anchors; `late_fusion` and `early_fusion` are not
(each anchor has a fixed meaning, e.g. the second is the jaw drop).

Enrollment (Sec. 4.3.4): `cache = model.enroll(anchor_images)` computes phi_exp of the anchors once; `model.
set_anchors(cache)` keeps it, and `model(images)` then runs only phi_exp of the current frame, phi_cal, the tail
and the heads. `AnchorCache.per_anchor()` / `AnchorCache.from_per_anchor` turn the cache into one flat float32
vector per anchor, the `features` of a runtime profile's anchors (`egoface.runtime.calibration.Anchor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from egoface.models.backbones import Backbone
from egoface.models.config import ModelConfig, camera_role, camera_side
from egoface.models.heads import ExpressionAssembler, PerEyeHead, TrackerOutput, mlp, unit_interval
from egoface.models.layers import BasicBlock, ConvBnAct, InvertedResidual
from egoface.models.registry import Registry, backbone_from_config, get_backbone_config, register_model_class
from egoface.models.regressor import TrackerModel, _check_shared_encoders

__all__ = [
    "CALIBRATION_MODULES",
    "DEFAULT_ANCHORS",
    "FUSION_CONV_MODULES",
    "AnchorCache",
    "CalibratedEncoder",
    "CalibratedModelConfig",
    "ExpressionCritic",
    "create_calibrated_model",
    "list_calibrated_models",
]

#: Calibration modules of Universal Table 3, plus `none` (the same encoder without anchors).
CALIBRATION_MODULES: tuple[str, ...] = (
    "late_fusion", "cross_attention", "self_attention", "pooling", "early_fusion", "none",
)  # fmt: skip
#: Six anchors of the runtime's guided enrollment (`egoface.runtime.calibration.ANCHOR_PROMPTS`), all among the
#: capture script's 15 candidates; `egoface anchors search` picks a set on data.
DEFAULT_ANCHORS: tuple[str, ...] = (
    "neutral", "maximal_jaw_drop", "big_smile", "pucker", "raised_brows", "closed_eyes",
)  # fmt: skip
_BRANCH_ROLES = ("eye", "mouth")  # upper face, lower face
_TAIL_LAYERS = {"mobilenetv3": 2, "resnet": 1}  # layers of the backbone body after the calibration module
#: The calibration modules with a 1x1 fusion conv, which `linear_fusion` can fold into the tail.
FUSION_CONV_MODULES: tuple[str, ...] = ("late_fusion", "pooling")


@dataclass(frozen=True)
class CalibratedModelConfig(ModelConfig):
    """A `ModelConfig` for `arch="calibrated"` with the calibration module (`CALIBRATION_MODULES`) and the ordered
    anchor names (segment anchors of the capture script; empty only for `none`). `per_eye_head`: REFA's heads
    (`PerEyeHead`: each eye's shapes and gaze from that eye camera's features, shared by both eyes; the other shapes
    from all features) instead of the paper's f_fuse (every shape from all features) and f_gaze (both eyes' gaze
    from both eye cameras' features). `linear_fusion`: the 1x1 fusion conv of `late_fusion` / `pooling` without its
    ReLU, folded into the tail's first block (`_FoldedFusion`: the anchors' per-frame cost drops to adds that
    onnxruntime fuses into convolutions the encoder runs anyway). Round-trips through JSON like its parent
    (`CalibratedModelConfig.from_json`)."""

    calibration: str = "late_fusion"
    anchors: tuple[str, ...] = DEFAULT_ANCHORS
    per_eye_head: bool = False
    linear_fusion: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.calibration not in CALIBRATION_MODULES:
            raise ValueError(f"calibration must be one of {CALIBRATION_MODULES}, got {self.calibration!r}")
        if self.linear_fusion and self.calibration not in FUSION_CONV_MODULES:
            raise ValueError(f"linear_fusion applies to the {' and '.join(FUSION_CONV_MODULES)} modules, "
                             f"not {self.calibration!r}")  # fmt: skip
        if len(set(self.anchors)) != len(self.anchors) or (not self.anchors and self.calibration != "none"):
            raise ValueError(
                f"the {self.calibration} module needs at least one anchor, all distinct; got anchors={self.anchors}"
            )
        if self.calibration == "none" and self.anchors:
            object.__setattr__(self, "anchors", ())  # the uncalibrated reference reads no anchors

    def without_anchors(self) -> CalibratedModelConfig:
        """The same encoder without anchors (module `none`), the uncalibrated reference."""
        return replace(self, calibration="none", anchors=(), linear_fusion=False)


@dataclass(frozen=True)
class AnchorCache:
    """One user's enrolled anchors: `features[role]: (k, M, c, h, w)` phi_exp maps of the role's k cameras for the
    M `anchors` (for `early_fusion`, the normalized images, c = 1, (h, w) = the input size)."""

    anchors: tuple[str, ...]
    features: dict[str, torch.Tensor]

    def per_anchor(self) -> dict[str, np.ndarray]:
        """anchor name -> one float32 vector: every role's (k, c, h, w) maps of that anchor, flattened, roles in
        sorted order (the layout `from_per_anchor` reads back)."""
        return {
            name: np.concatenate([self.features[role][:, i].reshape(-1).numpy() for role in sorted(self.features)])
            for i, name in enumerate(self.anchors)
        }

    @classmethod
    def from_per_anchor(cls, model: CalibratedEncoder, vectors: dict[str, np.ndarray]) -> AnchorCache:
        """Inverse of `per_anchor` for `model` (whose anchors must all be present; sizes are checked)."""
        missing = [name for name in model.config.anchors if name not in vectors]
        if missing:
            raise ValueError(f"the profile lacks anchors {missing}; the model needs {model.config.anchors}")
        shapes = {role: model.anchor_feature_shape(role) for role in sorted(model.branches)}
        size = sum(math.prod(shape) for shape in shapes.values())
        per_role: dict[str, list[torch.Tensor]] = {role: [] for role in shapes}
        for name in model.config.anchors:
            vector = np.asarray(vectors[name], np.float32).reshape(-1)
            if vector.size != size:
                raise ValueError(f"anchor {name!r} has {vector.size} features; this model expects {size} "
                                 "(features of another model or module?)")  # fmt: skip
            start = 0
            for role, shape in shapes.items():
                count = math.prod(shape)
                per_role[role].append(torch.from_numpy(vector[start : start + count].reshape(shape).copy()))
                start += count
        return cls(model.config.anchors, {role: torch.stack(maps, dim=1) for role, maps in per_role.items()})


# ------------------------------------------------------------------------------------------- calibration modules


class _Calibration(nn.Module):
    """A calibration module: `prepare(anchors (N, M, c, h, w)) -> memory`, everything about the anchors that does
    not depend on the current frame (computed once per user at `set_anchors`), then `forward(current (N, c, h, w),
    memory) -> (N, c, h, w)`. Equal, up to float rounding, to recomputing everything per frame."""

    def prepare(self, anchors: torch.Tensor) -> torch.Tensor:
        return anchors

    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _NoCalibration(_Calibration):
    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return current


class _EarlyFusion(_Calibration):
    """(N, 1, H, W) image, (N, M, 1, H, W) anchor images -> (N, 1 + M, H, W) input channels."""

    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return torch.cat([current, memory.flatten(1, 2)], dim=1)


class _ConcatFusion(_Calibration):
    """ReLU(1x1 conv with bias of [current, summary of the anchors] along channels), the conv's current part
    initialized to the identity and its anchor part to zero: phi_exp's maps are ReLU outputs (>= 0), so training
    starts exactly from the encoder without anchors. The summary is every anchor map (`late_fusion`) or their
    element-wise max (`pooling`, order-free). The conv is linear, so it splits into a current part and an anchor
    part; `prepare` computes the anchor part and the bias once per user, leaving per frame a c -> c conv whose sum
    with the memory and activation onnxruntime fuses into it (one op per frame)."""

    def __init__(self, channels: int, num_anchors: int, pool: bool) -> None:
        super().__init__()
        self.channels, self.pool = channels, pool
        self.fuse = nn.Conv2d((2 if pool else 1 + num_anchors) * channels, channels, 1)
        assert self.fuse.bias is not None
        with torch.no_grad():
            self.fuse.weight.zero_()
            self.fuse.weight[:, :channels, 0, 0] = torch.eye(channels)
            self.fuse.bias.zero_()

    def prepare(self, anchors: torch.Tensor) -> torch.Tensor:
        summary = anchors.amax(dim=1) if self.pool else anchors.flatten(1, 2)  # (N, c or M c, h, w)
        return F.conv2d(summary, self.fuse.weight[:, self.channels :], self.fuse.bias)  # (N, c, h, w)

    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if not self.training:
            # An identity depthwise 1x1 conv on the memory (exact): it brings the memory into onnxruntime's blocked
            # (NCHWc) layout, where the add and the activation then fuse into the conv; a plain graph input stays
            # NCHW and costs reorders and element-wise passes per frame.
            memory = F.conv2d(memory, memory.new_ones(self.channels, 1, 1, 1), groups=self.channels)
        return F.relu(F.conv2d(current, self.fuse.weight[:, : self.channels]) + memory)


class _FoldedFusion(_ConcatFusion):
    """`_ConcatFusion` without the ReLU (`linear_fusion`), folded into the tail's first block `entry`, whose output
    it returns. The convs of `entry` that read the fused map (a ResNet block's first conv and projection shortcut,
    an inverted residual's expansion) are linear in it:

        conv(W_c current + W_a summary + b) = (conv o W_c)(current) + conv(W_a summary + b)

    `prepare` computes the second term of each reading conv (their maps concatenated along channels) once per user;
    per frame, those convs run with the composed weights conv o W_c (the shape of conv's own) on the current map
    and add the memory before their norm and activation. A frame then costs what it costs the encoder without
    anchors plus one add per reading conv, which onnxruntime fuses into that conv."""

    def __init__(self, channels: int, num_anchors: int, pool: bool, entry: nn.Module) -> None:
        super().__init__(channels, num_anchors, pool)
        self.entry = entry
        self.readers = _fused_map_readers(entry)

    def prepare(self, anchors: torch.Tensor) -> torch.Tensor:
        fused = super().prepare(anchors)  # (N, c, h, w): W_a summary + b
        return torch.cat([F.conv2d(fused, conv.weight, None, conv.stride, conv.padding)
                          for conv, _, _ in self.readers], dim=1)  # fmt: skip

    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        parts = memory.split([conv.out_channels for conv, _, _ in self.readers], dim=1)
        read = [self._read(reader, current, part) for reader, part in zip(self.readers, parts, strict=True)]
        if isinstance(self.entry, BasicBlock):
            return self.entry.act(self.entry.conv2(read[0]) + read[1])
        assert isinstance(self.entry, InvertedResidual)
        return self.entry.project(self.entry.se(self.entry.depthwise(read[0])))

    def _read(self, reader: _ConvNormAct, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """One reading ConvBnAct of `entry` on the fused map, from the current map and its part of the memory."""
        conv, norm, act = reader
        weight = torch.einsum("oihw,ij->ojhw", conv.weight, self.fuse.weight[:, : self.channels, 0, 0])
        pre_norm = F.conv2d(current, weight, None, conv.stride, conv.padding)
        if self.training:  # the norm's batch statistics are those of the whole sum
            return act(norm(pre_norm + memory))
        # in eval the norm is affine, norm(y + m) = norm(y) + scale m: onnxruntime folds the norm into the conv, and
        # the add and activation into it too; the scale is a depthwise 1x1 conv, which also brings the memory into
        # onnxruntime's blocked layout (see `_ConcatFusion.forward`)
        assert norm.running_var is not None  # BatchNorm2d with running statistics (ConvBnAct's)
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        return act(norm(pre_norm) + F.conv2d(memory, scale[:, None, None, None], groups=len(scale)))


_ConvNormAct = tuple[nn.Conv2d, nn.BatchNorm2d, nn.Module]


def _fused_map_readers(entry: nn.Module) -> list[_ConvNormAct]:
    """The (conv, norm, activation) of each ConvBnAct of the tail's first block `entry` that reads its input, when
    nothing else reads it."""
    layers: list[nn.Module] = []
    if isinstance(entry, BasicBlock) and isinstance(entry.shortcut, ConvBnAct):
        layers = [entry.conv1, entry.shortcut]
    elif isinstance(entry, InvertedResidual) and isinstance(entry.expand, ConvBnAct) and not entry.residual:
        layers = [entry.expand]
    readers = []
    for layer in layers:
        conv, norm, act = layer.children()
        assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
        readers.append((conv, norm, act))
    if readers:
        return readers
    raise ValueError(f"linear_fusion folds the fusion conv into the convs of the tail's first block that read the "
                     f"fused map; this backbone's {type(entry).__name__} also reads it directly (identity "
                     f"shortcut, residual or no expansion conv)")  # fmt: skip


class _Attention(_Calibration):
    """Cross-attention (current tokens attend to anchor tokens) or self-attention over [current, anchor] tokens
    (one pre-norm Transformer encoder layer, current tokens kept). Tokens are the c-vectors of the h*w locations
    plus a learned embedding per location (none per anchor); `prepare` embeds and normalizes the anchor tokens."""

    def __init__(self, channels: int, tokens: int, cross: bool) -> None:
        super().__init__()
        heads = next(h for h in (4, 2, 1) if channels % h == 0)
        self.cross = cross
        self.position = nn.Parameter(torch.zeros(tokens, channels))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.norm = nn.LayerNorm(channels)
        self.norm_memory = nn.LayerNorm(channels) if cross else None  # self-attention: one norm for all tokens
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))

    def prepare(self, anchors: torch.Tensor) -> torch.Tensor:
        n, m, c, h, w = anchors.shape
        tokens = (anchors.flatten(3).transpose(2, 3) + self.position).reshape(n, m * h * w, c)  # (N, M*h*w, c)
        return (self.norm_memory or self.norm)(tokens)

    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        n, c, h, w = current.shape
        query = current.flatten(2).transpose(1, 2) + self.position  # (N, h*w, c)
        q = self.norm(query)
        keys = memory if self.cross else torch.cat([q, memory], dim=1)  # (N, [h*w +] M*h*w, c)
        tokens = query + self.attention(q, keys, keys, need_weights=False)[0]  # (N, h*w, c)
        tokens = tokens + self.mlp(self.norm_mlp(tokens))
        return tokens.transpose(1, 2).reshape(n, c, h, w)


def _calibration_module(name: str, channels: int, num_anchors: int, tokens: int) -> _Calibration:
    if name in FUSION_CONV_MODULES:
        return _ConcatFusion(channels, num_anchors, pool=name == "pooling")
    if name in ("cross_attention", "self_attention"):
        return _Attention(channels, tokens, cross=name == "cross_attention")
    if name == "early_fusion":
        return _EarlyFusion()
    return _NoCalibration()


class _Branch(nn.Module):
    """phi_exp, phi_cal and the fused tail of one face region (shared by the cameras of one role)."""

    def __init__(self, config: CalibratedModelConfig) -> None:
        super().__init__()
        assert config.backbone is not None
        early = config.calibration == "early_fusion"
        in_chans = 1 + len(config.anchors) if early else 1
        backbone = backbone_from_config(replace(config.backbone, in_chans=in_chans))
        assert isinstance(backbone, Backbone)
        layers = list(backbone.body.children())
        tail = _TAIL_LAYERS[config.backbone.family]
        if len(layers) <= tail:
            raise ValueError(f"the calibrated encoder splits the backbone body before its last {tail} "
                             f"layers; this backbone has {len(layers)}")  # fmt: skip
        if early:
            self.exp: nn.Module = nn.Identity()
            self.tail = nn.Sequential(backbone.stem, *layers)
            shape = (1, *config.input_size)
        else:
            self.exp = nn.Sequential(backbone.stem, *layers[:-tail])
            self.tail = nn.Sequential(*layers[-tail:])
            with torch.no_grad():
                shape = tuple(self.exp.eval()(torch.zeros(1, 1, *config.input_size)).shape[1:])
        self.map_shape: tuple[int, int, int] = (int(shape[0]), int(shape[1]), int(shape[2]))  # (c, h, w) of phi_exp
        if config.linear_fusion:  # the tail's first block becomes part of the fusion
            pool = config.calibration == "pooling"
            self.calibrate: _Calibration = _FoldedFusion(self.map_shape[0], len(config.anchors), pool, self.tail[0])
            self.tail = nn.Sequential(*list(self.tail)[1:])
        else:
            self.calibrate = _calibration_module(
                config.calibration, self.map_shape[0], len(config.anchors), self.map_shape[1] * self.map_shape[2]
            )
        self.num_features = backbone.num_features

    def forward(self, current: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """current: (N, c, h, w) phi_exp maps, memory: the anchors' `calibrate.prepare` -> (N, F) pooled features."""
        return self.tail(self.calibrate(current, memory)).mean((2, 3))


# ------------------------------------------------------------------------------------------------------ encoder


#: The calibrated encoders' own registry: they take anchors besides the frame, so they are not among the trackers
#: of `list_models()` (whose contract is `model(images)` alone), but `model_from_config` and `load_model` build
#: them like any tracker (the class is registered for `arch="calibrated"` in both).
_CALIBRATED: Registry[CalibratedModelConfig] = Registry("calibrated model", "arch")
list_calibrated_models = _CALIBRATED.names


def create_calibrated_model(name: str, **overrides: object) -> CalibratedEncoder:
    """A registered calibrated encoder, e.g. `create_calibrated_model("calibrated_nano", calibration="pooling",
    anchors=("neutral", "closed_eyes"), input_size=(64, 64))`."""
    model = _CALIBRATED.create(name, **overrides)
    assert isinstance(model, CalibratedEncoder)
    return model


@_CALIBRATED.register_class("calibrated")
@register_model_class("calibrated")
class CalibratedEncoder(TrackerModel):
    """The universal encoder of Eqs. 7-9; see the module docstring. Needs one left and one right eye camera and
    one left and one right mouth camera (flipped on one side, as `RefaRegressor`).

    Images are `(B, C, 1, H, W)` normalized (`normalize_images`), anchor images `(B, M, C, 1, H, W)` likewise,
    anchors in `config.anchors` order. forward_features: images -> (B, 4 F) camera-major, using the anchors set by
    `set_anchors` (required unless the module is `none`).
    """

    config: CalibratedModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, CalibratedModelConfig):
            raise TypeError(f"the calibrated encoder needs a CalibratedModelConfig, got {type(config).__name__}")
        _check_shared_encoders(config)
        self._cameras: dict[str, list[int]] = {}
        for role in _BRANCH_ROLES:
            order = [[i for i, c in enumerate(config.cameras) if camera_role(c) == role and camera_side(c) == side]
                     for side in ("left", "right")]  # fmt: skip
            if [len(o) for o in order] != [1, 1]:
                raise ValueError(f"the calibrated encoder needs one left and one right {role} camera "
                                 f"({role}_left, {role}_right); cameras are {config.cameras}")  # fmt: skip
            self._cameras[role] = [order[0][0], order[1][0]]  # subject's left first
        extra = [c for c in config.cameras if camera_role(c) not in _BRANCH_ROLES]
        if extra:
            raise ValueError(f"the calibrated encoder reads eye and mouth cameras only; remove {extra}")
        self.config = config
        self.input_shape = (len(config.cameras), 1, *config.input_size)
        self.branches = nn.ModuleDict({role: _Branch(config) for role in _BRANCH_ROLES})
        self.feature_dim = self._branch("eye").num_features
        self.num_features = 4 * self.feature_dim
        if config.per_eye_head:
            self.head = PerEyeHead(config, self.feature_cameras, self.feature_dim)
        else:
            self.fuse = mlp(self.num_features, config.hidden_features, len(config.free_expression_names))  # f_fuse
            self.gaze_head = mlp(2 * self.feature_dim, config.hidden_features, 4)  # f_gaze, upper face only
            self.assemble = ExpressionAssembler(config)
        self._anchors: AnchorCache | None = None
        self._memory: dict[str, torch.Tensor] = {}  # per role (1, k, ...): the modules' `prepare` of the cache

    def _branch(self, role: str) -> _Branch:
        branch = self.branches[role]
        assert isinstance(branch, _Branch)
        return branch

    @property
    def feature_cameras(self) -> tuple[str, ...]:
        """The cameras of `forward_features`' blocks of F features, in order (eye cameras, then mouth cameras,
        the subject's left first)."""
        return tuple(self.config.cameras[i] for role in _BRANCH_ROLES for i in self._cameras[role])

    def anchor_feature_shape(self, role: str) -> tuple[int, ...]:
        """Shape of one anchor's cached features for `role`: (k cameras, c, h, w)."""
        return (len(self._cameras[role]), *self._branch(role).map_shape)

    def _check_anchor_images(self, anchor_images: torch.Tensor, batch: int | None) -> None:
        want = (len(self.config.anchors), *self.input_shape)
        if anchor_images.ndim != 6 or tuple(anchor_images.shape[2:]) != want[1:] or anchor_images.shape[1] != want[0]:
            raise ValueError(f"anchor_images must have shape (B, {', '.join(map(str, want))}) for anchors "
                             f"{self.config.anchors}, got {tuple(anchor_images.shape)}")  # fmt: skip
        if batch is not None and anchor_images.shape[0] != batch:
            raise ValueError(f"anchor_images hold {anchor_images.shape[0]} samples for a batch of {batch}")

    def _exp(self, role: str, images: torch.Tensor) -> torch.Tensor:
        """images: (B, ..., C, 1, H, W) -> phi_exp maps of the role's cameras (B, ..., k, c, h, w)."""
        views = images[..., self._cameras[role], :, :, :]  # (B, ..., k, 1, H, W)
        return self._branch(role).exp(views.flatten(0, -4)).unflatten(0, views.shape[:-3])

    def encode_anchors(self, anchor_images: torch.Tensor) -> dict[str, torch.Tensor]:
        """anchor_images (B, M, C, 1, H, W) -> per role (B, k, M, c, h, w) phi_exp maps (with gradients)."""
        self._check_anchor_images(anchor_images, None)
        return {role: self._exp(role, anchor_images).transpose(1, 2) for role in _BRANCH_ROLES}

    @torch.no_grad()
    def enroll(self, anchor_images: torch.Tensor) -> AnchorCache:
        """One user's anchors (M, C, 1, H, W) normalized -> their cached features (eval mode, no gradients)."""
        was_training = self.training
        self.eval()
        try:
            features = self.encode_anchors(anchor_images[None])
        finally:
            self.train(was_training)
        return AnchorCache(self.config.anchors, {role: maps[0] for role, maps in features.items()})

    def set_anchors(self, cache: AnchorCache | None) -> None:
        """Use `cache` (from `enroll`, or `AnchorCache.from_per_anchor`) for every later `forward`. The
        calibration modules' frame-independent work on the anchors is done here, with the current weights: call
        it again after changing them."""
        memory: dict[str, torch.Tensor] = {}
        if cache is not None:
            if cache.anchors != self.config.anchors:
                raise ValueError(f"the cache holds anchors {cache.anchors}; this model needs {self.config.anchors}")
            for role in _BRANCH_ROLES:
                shape = self.anchor_feature_shape(role)
                want, have = (shape[0], len(cache.anchors), *shape[1:]), tuple(cache.features[role].shape)
                if have != want:
                    raise ValueError(f"cached {role} features have shape {have}, expected {want}")
            with torch.no_grad():
                memory = {role: self.prepare_memory(role, maps[None]) for role, maps in cache.features.items()}
        self._anchors, self._memory = cache, memory

    @property
    def enrolled_anchors(self) -> AnchorCache | None:
        """The cache `forward` uses (None before `set_anchors`)."""
        return self._anchors

    def prepare_memory(self, role: str, maps: torch.Tensor) -> torch.Tensor:
        """maps (B, k, M, c, h, w) -> the role's calibration memory (B, k, ...)."""
        return self._branch(role).calibrate.prepare(maps.flatten(0, 1)).unflatten(0, maps.shape[:2])

    def features_with_memory(self, x: torch.Tensor, memory: dict[str, torch.Tensor]) -> torch.Tensor:
        """x: images (B, C, 1, H, W); memory: per role (B or 1, k, ...) -> (B, 4 F), camera-major."""
        self._check_input(x, "images")
        out = []
        for role in _BRANCH_ROLES:
            views = x[:, self._cameras[role]]  # (B, k, 1, H, W)
            # phi_exp's map goes to the calibration module without a reshape in between (and a memory of batch 1
            # meets a batch of 1 without an expand): in an exported graph either would move the map out of
            # onnxruntime's blocked layout and back, every frame
            current = self._branch(role).exp(views.flatten(0, 1))  # (B k, c, h, w)
            prepared = memory[role]
            if prepared.shape[0] != x.shape[0]:
                prepared = prepared.expand(x.shape[0], *prepared.shape[1:])  # (B, k, ...)
            pooled = self._branch(role)(current, prepared.flatten(0, 1))  # (B k, F)
            out.append(pooled.unflatten(0, views.shape[:2]).flatten(1))  # (B, k F)
        return torch.cat(out, dim=1)

    def features_with_anchors(self, x: torch.Tensor, anchors: dict[str, torch.Tensor]) -> torch.Tensor:
        """x: images (B, C, 1, H, W); anchors: per role (B or 1, k, M, c, h, w) phi_exp maps -> (B, 4 F),
        camera-major (eye_left, eye_right, mouth_left, mouth_right)."""
        return self.features_with_memory(x, {role: self.prepare_memory(role, maps) for role, maps in anchors.items()})

    def forward_with_anchor_images(self, x: torch.Tensor, anchor_images: torch.Tensor) -> TrackerOutput:
        """Training path: x (B, C, 1, H, W), anchor_images (B, M, C, 1, H, W), both normalized; phi_exp of the
        anchors runs with gradients."""
        self._check_anchor_images(anchor_images, x.shape[0])
        return self.forward_head(self.features_with_anchors(x, self.encode_anchors(anchor_images)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: images (B, C, 1, H, W) -> (B, 4 F) with the anchors of `set_anchors`."""
        if self._anchors is None:
            if self.config.anchors:
                raise RuntimeError(f"no anchors enrolled: call set_anchors(model.enroll(anchor_images)) with the "
                                   f"user's {self.config.anchors} first")  # fmt: skip
            empty = {role: x.new_zeros(1, len(self._cameras[role]), 0, *self._branch(role).map_shape)
                     for role in _BRANCH_ROLES}  # fmt: skip
            return self.features_with_anchors(x, empty)
        return self.features_with_memory(x, self._memory)

    def forward_head(self, features: torch.Tensor) -> TrackerOutput:
        """features (B, 4 F) -> TrackerOutput: f_fuse on all four cameras, f_gaze on the eye cameras (or the
        per-eye heads)."""
        if self.config.per_eye_head:
            return self.head(features)
        free = unit_interval(self.fuse(features))  # (B, 45)
        gaze = self.config.gaze_limit_deg * torch.tanh(self.gaze_head(features[:, : 2 * self.feature_dim]))
        return self.assemble(free, gaze.unflatten(1, (2, 2)))  # gaze (B, 2 eyes, (yaw, pitch)) deg


class ExpressionCritic(nn.Module):
    """The WGAN-GP critic h of Universal Eq. 15 on expression vectors: (B, K) coefficients -> (B,) scores.
    Three linear layers with LeakyReLU and no normalization (a gradient penalty needs per-sample gradients)."""

    def __init__(self, num_inputs: int, hidden_features: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_inputs, hidden_features), nn.LeakyReLU(0.2),
            nn.Linear(hidden_features, hidden_features), nn.LeakyReLU(0.2),
            nn.Linear(hidden_features, 1),
        )  # fmt: skip

    def forward(self, expression: torch.Tensor) -> torch.Tensor:
        return self.net(expression)[:, 0]


# The tiny preset's encoder (refa_nano's ResNet at half width) and the paper-like one (the MobileNetV3-like tiny
# backbone, split before its last block as Sec. 4.3.1 splits MobileNetV3).
_CALIBRATED.register(
    "calibrated_nano",
    CalibratedModelConfig(arch="calibrated", backbone=get_backbone_config("resnet_nano"), hidden_features=64),
)
# The shipped tracker's encoder (refa_lite's ResNet: phi_exp = stem + three stages, 64 channels at stride 8).
_CALIBRATED.register(
    "calibrated_lite",
    CalibratedModelConfig(arch="calibrated", backbone=get_backbone_config("resnet_lite"), hidden_features=128),
)
# The same behind the shipped tracker's learned 2x reduction (`resnet_lite_192`): 192x192 frames at about the cost
# of `calibrated_lite` at 96x96.
_CALIBRATED.register(
    "calibrated_lite_192",
    CalibratedModelConfig(
        arch="calibrated", backbone=get_backbone_config("resnet_lite_192"), hidden_features=128, per_eye_head=True
    ),
)
_CALIBRATED.register(
    "calibrated_mobilenetv3_tiny",
    CalibratedModelConfig(arch="calibrated", backbone=get_backbone_config("mobilenetv3_tiny"), hidden_features=128),
)
