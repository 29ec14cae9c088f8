"""The build: manifest -> sources -> export -> triton config -> repository, all or nothing.

    report = build(Path("models.yaml"), Path("Triton/models"))
    for entry in report.models: print(entry.name, entry.status)

models.py builds the models (and, after them, the pipelines: pipelines.py) into a staging copy that replaces the
repository only when everything built and proved; toolchain.py runs the whole build in a venv of another torch
where the manifest says the target image's (`target_torch:`); report.py is what a build says, and its JSON.
"""

from compiler.build.models import build, build_loaded, kept_folder
from compiler.build.options import BuildOptions
from compiler.build.report import BuildReport, ModelReport

__all__ = ["BuildOptions", "BuildReport", "ModelReport", "build", "build_loaded", "kept_folder"]
