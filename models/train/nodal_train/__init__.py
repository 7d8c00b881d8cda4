"""Training and ONNX export of nodal's shipped models (see docs/models.md)."""
