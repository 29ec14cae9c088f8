"""A declarative model-repository compiler for NVIDIA Triton Inference Server.

models.yaml lists PyTorch models; `python -m compiler build` traces or scripts
each one, proves the export against eager PyTorch, and writes a Triton model
repository (config.pbtxt built as a protobuf ModelConfig, model.pt beside it).
"""

__version__ = "0.1.0"
