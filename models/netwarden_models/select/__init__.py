"""Stage 6 (optional), select: latency of ONNX files in tract next to onnxruntime (``bench``)
and the rule that picks which of several candidate runs ships (``rule``, ``select``)."""
