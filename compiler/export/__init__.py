"""Export a model (torch.export + AOTInductor, or TorchScript), behind its guards, and prove the export against
eager PyTorch.

    result = export_model(model_spec, module, release)   # raises ExportError
    result.save(Path("model.pt2")); result.outputs; result.binding; result.guards
"""

from compiler.export.exporter import ExportResult, export_model

__all__ = ["ExportResult", "export_model"]
