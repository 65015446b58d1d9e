"""egoface.models — backbones and trackers behind one registry and one small interface.

    model = create_model("refa_tiny")                  # a registered configuration, see list_models()
    out = model(images)                                # images: (B, C, 1, H, W) -> TrackerOutput
    model_from_config(ModelConfig.from_json(text))     # rebuild from the config saved with the weights
    model = load_model("RUN/model.pt"); load_shipped_model("default")   # model files, weights + config
    detector = load_detector("RUN/detector.pt")        # 2D landmarks per camera (the flnet_detected baseline)

Every model has `forward_features`, `forward_head`, `forward`, `num_features` and `.config`; trackers return a
`TrackerOutput(expression (B, 53), free_expression (B, 45), gaze (B, 2, 2) deg)`.
"""

from egoface.models.backbones import Backbone, MobileNetV3, ResNet
from egoface.models.calibrated import (
    CALIBRATION_MODULES,
    FUSION_CONV_MODULES,
    AnchorCache,
    CalibratedEncoder,
    CalibratedModelConfig,
    ExpressionCritic,
    create_calibrated_model,
    list_calibrated_models,
)
from egoface.models.config import BlockSpec, MobileNetV3Config, ModelConfig, ResNetConfig, camera_role, camera_side
from egoface.models.files import (
    SHIPPED_MODELS,
    load_model,
    load_shipped_model,
    normalize_images,
    save_model,
    shipped_model_path,
)
from egoface.models.heads import TrackerOutput
from egoface.models.keypoints import (
    KeypointDetector,
    KeypointDetectorConfig,
    KeypointOutput,
    load_detector,
    save_detector,
)
from egoface.models.registry import (
    backbone_from_config,
    create_backbone,
    create_model,
    get_backbone_config,
    get_model_config,
    list_backbones,
    list_models,
    model_from_config,
    register_backbone,
    register_model,
)
from egoface.models.regressor import FLNet, NeckNet, RefaRegressor, TrackerModel

__all__ = [
    "CALIBRATION_MODULES",
    "FUSION_CONV_MODULES",
    "SHIPPED_MODELS",
    "AnchorCache",
    "Backbone",
    "BlockSpec",
    "CalibratedEncoder",
    "CalibratedModelConfig",
    "ExpressionCritic",
    "FLNet",
    "KeypointDetector",
    "KeypointDetectorConfig",
    "KeypointOutput",
    "MobileNetV3",
    "MobileNetV3Config",
    "ModelConfig",
    "NeckNet",
    "RefaRegressor",
    "ResNet",
    "ResNetConfig",
    "TrackerModel",
    "TrackerOutput",
    "backbone_from_config",
    "camera_role",
    "camera_side",
    "create_backbone",
    "create_calibrated_model",
    "create_model",
    "get_backbone_config",
    "get_model_config",
    "list_backbones",
    "list_calibrated_models",
    "list_models",
    "load_detector",
    "load_model",
    "load_shipped_model",
    "model_from_config",
    "normalize_images",
    "register_backbone",
    "register_model",
    "save_detector",
    "save_model",
    "shipped_model_path",
]
