"""A declarative model-repository compiler for NVIDIA Triton Inference Server.

models.yaml lists PyTorch models (and pipelines around them); `python -m compiler build` exports each one
(torch.export + AOTInductor, `model.pt2`, for Triton 26.03 on; TorchScript, `model.pt`, before), proves the
export against eager PyTorch, and writes a Triton model repository (config.pbtxt built as a protobuf ModelConfig).
"""

__version__ = "0.1.0"
