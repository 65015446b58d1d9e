"""egoface.data — the dataset store (zarr v3), splits and shards, integrity checks, the torch Dataset, augmentation.

Write: `DatasetStore(root).write_recording(RecordingData(...))` (atomic, resumable, safe for concurrent writers).
Inspect: `dataset_info(root)`, `check_dataset(root, progress)`. Train: `HeadsetDataset(root, ...)` + `collate`,
augmentations in `egoface.data.augment`. Evaluate: `OracleReader(root)` (real-domain true labels; never in training).
Layout and arrays: docs/datasheet.md and `egoface.data.schema.RECORDING_ARRAYS`.
"""

from egoface.data.augment import AugmentConfig, cutmix
from egoface.data.dataset import Batch, HeadsetDataset, Sample, collate
from egoface.data.oracle import OracleReader
from egoface.data.schema import DOMAINS, RECORDING_ARRAYS, SPLITS, Labels, RecordingData, SubjectInfo
from egoface.data.splits import Shard, assign_split, parse_shard, shard_of, split_subjects
from egoface.data.store import DatasetStore, check_dataset, dataset_info

__all__ = [
    "DOMAINS",
    "RECORDING_ARRAYS",
    "SPLITS",
    "AugmentConfig",
    "Batch",
    "DatasetStore",
    "HeadsetDataset",
    "Labels",
    "OracleReader",
    "RecordingData",
    "Sample",
    "Shard",
    "SubjectInfo",
    "assign_split",
    "check_dataset",
    "collate",
    "cutmix",
    "dataset_info",
    "parse_shard",
    "shard_of",
    "split_subjects",
]
