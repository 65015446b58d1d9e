"""Evaluation-only access to the true labels of the `real` domain (the oracle).

The store writes them to `root/oracle/real/<subject>/<recording>/labels/...` (the layout of the training tree, labels
only). Training code must never import this module: `egoface.data.dataset` has no path or parameter that reaches
this tree, and a test scans its import graph to prove it. Metrics in `egoface.eval` use `OracleReader`.
"""

from __future__ import annotations

import os
from pathlib import Path

from egoface.data._tree import RecordingRef, read_attrs, read_labels, require_role, scan_recordings
from egoface.data.schema import Labels, check_name

__all__ = ["ORACLE_DIR", "ORACLE_DOMAIN", "ORACLE_ROLE", "OracleReader"]

ORACLE_DIR = "oracle"
ORACLE_ROLE = "oracle"
#: The only domain whose true labels are withheld from the training tree.
ORACLE_DOMAIN = "real"


class OracleReader:
    """Reads the withheld true labels of real-domain recordings of the store at `root` (evaluation only)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root) / ORACLE_DIR
        require_role(self.root, ORACLE_ROLE)

    def recordings(self) -> list[RecordingRef]:
        """Every recording with withheld labels."""
        return scan_recordings(self.root, (ORACLE_DOMAIN,))

    def labels(self, subject: str, recording: str, frames: slice | None = None) -> Labels:
        """The true labels of one real recording (frames `frames`, default all)."""
        path = self.root / ORACLE_DOMAIN / check_name("subject", subject) / check_name("recording", recording)
        if not (path / "zarr.json").exists():
            raise KeyError(f"no withheld labels for {subject}/{recording} under {self.root}")
        cameras = tuple(read_attrs(self.root.parent / ORACLE_DOMAIN / subject)["cameras"])
        return read_labels(path, cameras, frames if frames is not None else slice(None))
