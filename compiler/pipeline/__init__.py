"""Pipelines: raw requests in, answers out, as Triton ensembles of Python-backend steps around the manifest's
models. plan.py wires the steps (validate needs no model), writer.py writes the step models and the ensemble,
proof.py proves the pipeline against the same steps run in-process around eager PyTorch.

    plan = plan_pipeline(loaded, 0)              # PipelinePlan, or a ManifestError at the step's line
"""
