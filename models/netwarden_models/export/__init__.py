"""Stages 4 and 5, export and quantize: ONNX files from a run, the one onnxruntime/tract
helper (``runtimes``) that every stage uses to run them, and the measured int8 choice."""
