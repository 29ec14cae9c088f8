"""Profiling a built repository with Triton's own tools: the inputs perf_analyzer and Model Analyzer need (written by
every build), perf_analyzer from the tritonclient wheel (perf_analyzer.py), and Model Analyzer's sweeps
(model_analyzer.py, `compiler profile`).

For each model, under <repository>/../profiling/<model>/:
  input_data.json      perf_analyzer --input-data: valid requests (ids within the vocabulary, masks of ones)
  perf_analyzer.txt    the perf_analyzer command, with a --shape for every input that has a -1 dim
  model_analyzer.yaml  a Model Analyzer profile config for the model
"""

from compiler.profiling.data import input_data, shape_flags
from compiler.profiling.writer import profiling_folder, write_profiling

__all__ = ["input_data", "profiling_folder", "shape_flags", "write_profiling"]
