"""egoface.runtime: ONNX export, the Tracker, sources, calibration, failure detection, filters and outputs."""
