"""egoface.placement — camera placement by simulation (REFA Sec. 4).

Sample a population (`sample_population(model, 100, 5)`: identities, donnings, glasses, key expressions), then
`evaluate_rig(rig, population)` -> per camera visibility V (REFA Eq. 1), visible fraction and range of motion M
(REFA Eq. 2, pixels) with their spread, per key region and per key expression; `compare_rigs` ranks candidate rigs per
camera role as in REFA Fig. 1; `search_camera` moves one camera inside the feasible `mount_region` to raise the
weighted V/M score; `write_evaluation_report` / `write_comparison_report` write markdown, bar charts and contact
sheets. Definitions and how to read the numbers: docs/placement.md.
"""

from egoface.placement.compare import Comparison, RoleComparison, RoleScore, compare_rigs, placement_score
from egoface.placement.keys import KEY_EXPRESSIONS, ROLE_EXPRESSIONS, CameraKeys, camera_keys
from egoface.placement.metrics import DEPTH_RESOLUTION, CameraMetrics, RegionMetrics, RigMetrics, evaluate_rig
from egoface.placement.population import GlassesFrame, Population, sample_population
from egoface.placement.report import camera_views, write_comparison_report, write_evaluation_report
from egoface.placement.search import CameraPose, MountRegion, SearchResult, mount_region, search_camera

__all__ = [
    "DEPTH_RESOLUTION",
    "KEY_EXPRESSIONS",
    "ROLE_EXPRESSIONS",
    "CameraKeys",
    "CameraMetrics",
    "CameraPose",
    "Comparison",
    "GlassesFrame",
    "MountRegion",
    "Population",
    "RegionMetrics",
    "RigMetrics",
    "RoleComparison",
    "RoleScore",
    "SearchResult",
    "camera_keys",
    "camera_views",
    "compare_rigs",
    "evaluate_rig",
    "mount_region",
    "placement_score",
    "sample_population",
    "search_camera",
    "write_comparison_report",
    "write_evaluation_report",
]
