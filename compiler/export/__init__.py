"""Export a model to TorchScript and prove the export against eager PyTorch.

    result = export_model(model_spec, module, release)   # raises ExportError
    result.save(Path("model.pt")); result.outputs; result.binding
"""

from compiler.export.exporter import ExportResult, export_model

__all__ = ["ExportResult", "export_model"]
