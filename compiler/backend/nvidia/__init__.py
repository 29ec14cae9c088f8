"""NVIDIA's C++ PyTorch backend (triton-inference-server/pytorch_backend), built here from pinned sources.

`sources.py` knows the branches, their commits and which one serves a release; `build.py` builds and caches the
library for this venv's torch. server/distribution.py lays it out in tritonserver's backend directory.
"""
