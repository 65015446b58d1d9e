"""The oracle guarantee: nothing on the training path can read the real domain's true labels.

Proven three ways, each with a control showing the check would catch a violation:
- at run time, every file and directory the training Dataset touches (Python audit events) stays out of `oracle/`,
  while `OracleReader` (the evaluation path) is seen reading there;
- the samples of real recordings carry no labels and no tensor equal to the known true labels;
- statically, `egoface.data.dataset` and every egoface module it imports neither import the oracle/store modules
  nor contain the word "oracle", while the same scan of `egoface.data.store` does find it.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from egoface.data import DOMAINS, SPLITS, DatasetStore, HeadsetDataset, OracleReader, collate
from test_data_helpers import make_recording

_TOUCHED: list[str] = []
_RECORDING = {"on": False}


def _audit(event: str, args: tuple) -> None:
    if _RECORDING["on"] and event in ("open", "os.listdir", "os.scandir") and args and args[0] is not None:
        path = args[0]
        if isinstance(path, str | bytes | Path):
            _TOUCHED.append(str(Path(path.decode() if isinstance(path, bytes) else path).resolve()))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records while a test switches it on


def _touched_while(action) -> list[str]:
    _TOUCHED.clear()
    _RECORDING["on"] = True
    try:
        action()
    finally:
        _RECORDING["on"] = False
    return list(_TOUCHED)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("withheld")
    store = DatasetStore(root)
    store.write_recording(make_recording(subject="s000", frames=20, seed=1))
    store.write_recording(make_recording(subject="r000", frames=20, seed=2, domain="real"))
    store.write_recording(make_recording(subject="r001", frames=20, seed=3, domain="real", split="test"))
    return root.resolve()


def test_training_dataset_never_touches_the_oracle_tree(store_root: Path) -> None:
    oracle = str(store_root / "oracle")
    samples = []

    def iterate() -> None:
        ds = HeadsetDataset(store_root, domains=DOMAINS, splits=SPLITS, anchors=("neutral",), resolution=(16, 16))
        samples.extend(ds[i] for i in range(len(ds)))
        list(DataLoader(ds, batch_size=7, collate_fn=collate))

    touched = _touched_while(iterate)
    assert any(p.startswith(str(store_root / "real")) for p in touched)  # the hook sees the dataset's reads
    assert [p for p in touched if p.startswith(oracle)] == []
    evaluation = _touched_while(lambda: OracleReader(store_root).labels("r000", "script"))
    assert any(p.startswith(oracle) for p in evaluation)  # control: an oracle read is caught

    truth = make_recording(subject="r000", frames=20, seed=2, domain="real").labels
    real = [s for s in samples if s.domain == "real"]
    assert len(real) == 40
    for sample in real:
        assert sample.expression is None and sample.gaze is None and sample.keypoints is None
        assert sample.head_rotation is None and sample.head_translation is None and sample.keypoint_visibility is None
        values = [sample.images, *sample.anchor_images.values()]
        assert not any(v.shape[-1] == 53 and torch.allclose(v.flatten()[:53], torch.from_numpy(truth.expression[0]))
                       for v in values)  # fmt: skip
    np.testing.assert_array_equal(OracleReader(store_root).labels("r000", "script").expression, truth.expression)


def test_the_dataset_refuses_a_root_that_is_not_a_training_store(store_root: Path) -> None:
    with pytest.raises(ValueError, match="expected 'dataset'"):
        HeadsetDataset(store_root / "oracle", domains=("real",))


def _egoface_import_graph(module: str) -> dict[str, str]:
    """Source of `module` and of every egoface module it imports, transitively (package __init__ files aside)."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        source = Path(spec.origin).read_text(encoding="utf-8")
        seen[name] = source
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for imported in (n for n in names if n.startswith("egoface.")):
                try:
                    spec = importlib.util.find_spec(imported)
                except ModuleNotFoundError:  # `from module import function`: not a module
                    continue
                if spec is not None and spec.origin and not spec.origin.endswith("__init__.py"):
                    todo.append(imported)
    return seen


def test_training_modules_do_not_import_or_name_the_oracle() -> None:
    graph = _egoface_import_graph("egoface.data.dataset")
    assert {"egoface.data.dataset", "egoface.data._tree", "egoface.data.schema"} <= set(graph)
    assert "egoface.data.oracle" not in graph and "egoface.data.store" not in graph
    assert [m for m, source in graph.items() if "oracle" in source.lower()] == []
    control = _egoface_import_graph("egoface.data.store")
    assert "egoface.data.oracle" in control and any("oracle" in s.lower() for s in control.values())
