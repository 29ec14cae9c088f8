"""The one place that knows how a Triton model repository is laid out, and which platform writes which file.

    <repository>/<model>/config.pbtxt
    <repository>/<model>/configs/<variant>.pbtxt      # tritonserver --model-config-name=<variant>
    <repository>/<model>/<version>/<model file>        # model.pt for pytorch_libtorch
    <repository>/<model>/build.json                    # our build record (repository/record.py)
    <parent>/.<repository>.<what>                      # our sidecars beside it, never inside (sidecar())

    layout.config_file(folder)                  # folder / "config.pbtxt"
    layout.config_file(folder, "cpu")           # folder / "configs/cpu.pbtxt" when it exists, else config.pbtxt
    layout.model_file(folder, 1, config)        # folder / "1/model.pt" (default_model_filename respected)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG_FILE = "config.pbtxt"
#: <model>/configs/<variant>.pbtxt, chosen by tritonserver --model-config-name
VARIANTS_DIR = "configs"
VARIANT_SUFFIX = ".pbtxt"

#: Triton's platform names for PyTorch models; tritonserver maps both to the backend named "pytorch" (core's
#: constants.h: kPyTorchLibTorchPlatform / kPyTorchLibTorchFilename, kPyTorchAotiPlatform / kPyTorchAotiFilename).
PYTORCH_PLATFORM = "pytorch_libtorch"
AOTI_PLATFORM = "torch_aoti"
PYTORCH_BACKEND = "pytorch"
#: The name NVIDIA's PyTorch backend is also laid out under for the embedded 24.10 server, which knows no torch_aoti
#: platform but loads one whose config names this backend (server/served.py, backend/nvidia/build.py).
AOTI_BACKEND_ALIAS = "pytorch_aoti"
#: The file each platform loads from a version folder unless default_model_filename says otherwise.
DEFAULT_MODEL_FILENAMES = {PYTORCH_PLATFORM: "model.pt", AOTI_PLATFORM: "model.pt2"}
TORCHSCRIPT_FILENAME = DEFAULT_MODEL_FILENAMES[PYTORCH_PLATFORM]
AOTI_FILENAME = DEFAULT_MODEL_FILENAMES[AOTI_PLATFORM]
#: Every platform and backend that loads a file from a version folder, and the file (core's constants.h:
#: kTensorFlowGraphDefFilename, kTensorFlowSavedModelFilename, kTensorRTPlanFilename, kOnnxRuntimeOnnxFilename,
#: kOpenVINORuntimeOpenVINOFilename, kPyTorchLibTorchFilename, kPyTorchAotiFilename, kPythonFilename). A
#: SavedModel is a folder. Ensembles load no file; a custom backend (identity, say) has its own rules.
PLATFORM_FILENAMES = {**DEFAULT_MODEL_FILENAMES, "libtorch": "model.pt", "tensorflow_graphdef": "model.graphdef",
                      "tensorflow_savedmodel": "model.savedmodel", "tensorrt_plan": "model.plan",
                      "onnxruntime_onnx": "model.onnx"}
BACKEND_FILENAMES = {PYTORCH_BACKEND: TORCHSCRIPT_FILENAME, "tensorflow": "model.savedmodel", "tensorrt": "model.plan",
                     "onnxruntime": "model.onnx", "openvino": "model.xml", "python": "model.py"}
ENSEMBLE_PLATFORM = "ensemble"
#: What Triton core makes of a config that names neither platform nor backend (nor default_model_filename): the
#: files of the model's first subfolder (the first name in sorted order), tried in this order; (file, what it must
#: be: "dir", "file" or None for either, backend, platform). Core r24.10 src/model_config_utils.cc:1011
#: AutoCompleteBackendFields (TensorFlow :1038, TensorRT :1089, ONNX Runtime :1118, OpenVINO :1143, PyTorch :1163,
#: Python :1194). A folder named <name>.<backend> is the custom-backend case after these (:1214).
AUTOCOMPLETED = (("model.savedmodel", "dir", "tensorflow", "tensorflow_savedmodel"),
                 ("model.graphdef", "file", "tensorflow", "tensorflow_graphdef"),
                 ("model.plan", "file", "tensorrt", "tensorrt_plan"),
                 ("model.onnx", None, "onnxruntime", "onnxruntime_onnx"),
                 ("model.xml", None, "openvino", ""),
                 ("model.pt", "file", PYTORCH_BACKEND, PYTORCH_PLATFORM),
                 ("model.py", None, "python", ""))


def autocompleted(folder: Path) -> tuple[str, str, str] | None:
    """(backend, platform, model file) that Triton core derives for `folder` when its config names neither platform
    nor backend (AUTOCOMPLETED), or None where it derives none."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not subfolders:
        return None
    first = subfolders[0]
    for filename, kind, backend, platform in AUTOCOMPLETED:
        path = first / filename
        if path.exists() and (kind is None or (kind == "dir") == path.is_dir()):
            return backend, platform, filename
    return None
#: The manifest's export kind -> the platform its config names.
PLATFORM_OF_EXPORT = {"trace": PYTORCH_PLATFORM, "script": PYTORCH_PLATFORM, "aoti": AOTI_PLATFORM}


def is_pytorch(config: Any) -> bool:
    """A config served by the PyTorch backend: by platform, or by backend name alone."""
    return bool(config.platform in (PYTORCH_PLATFORM, AOTI_PLATFORM) or config.backend == PYTORCH_BACKEND)


def is_aoti(config: Any) -> bool:
    return bool(config.platform == AOTI_PLATFORM)


def filename_of_export(export: str) -> str:
    return DEFAULT_MODEL_FILENAMES[PLATFORM_OF_EXPORT[export]]


def model_filename(config: Any) -> str | None:
    """The file (or folder) tritonserver loads from each version folder of a config (a ModelConfig); None where
    none is required (an ensemble) or only the backend knows (a custom backend such as identity)."""
    if config is None:
        return TORCHSCRIPT_FILENAME
    if config.default_model_filename:
        return str(config.default_model_filename)
    if config.platform == ENSEMBLE_PLATFORM:
        return None
    if config.backend and config.backend != PYTORCH_BACKEND and config.backend in BACKEND_FILENAMES:
        # the named backend runs the model whatever the platform says: tritonserver 2.51 serves platform
        # pytorch_libtorch with backend python from model.py (tests/check/cases/platform_with_python_backend)
        return BACKEND_FILENAMES[config.backend]
    if config.platform in PLATFORM_FILENAMES:
        return PLATFORM_FILENAMES[config.platform]
    return BACKEND_FILENAMES.get(config.backend)


def label_filename(output: str) -> str:
    """The file an output's labels are copied to, in the model folder (its config's label_filename)."""
    import re

    return "labels_" + re.sub(r"[^A-Za-z0-9_.-]", "_", output) + ".txt"


#: Where model_warmup's input_data_file files live: <model>/warmup/<file> (Triton's layout).
WARMUP_DIR = "warmup"


def config_file(folder: Path, variant: str | None = None) -> Path:
    """The config tritonserver loads for `variant`: configs/<variant>.pbtxt, else config.pbtxt (its fallback)."""
    if variant:
        chosen = variant_file(folder, variant)
        if chosen.is_file():
            return chosen
    return Path(folder) / CONFIG_FILE


def variant_file(folder: Path, variant: str) -> Path:
    return Path(folder) / VARIANTS_DIR / f"{variant}{VARIANT_SUFFIX}"


def variant_files(folder: Path) -> list[Path]:
    return sorted((Path(folder) / VARIANTS_DIR).glob(f"*{VARIANT_SUFFIX}"))


def is_variant_file(path: Path) -> bool:
    return Path(path).parent.name == VARIANTS_DIR


def model_of(config_path: Path) -> Path:
    """The model folder a config file belongs to (config.pbtxt or configs/<variant>.pbtxt)."""
    path = Path(config_path)
    return path.parent.parent if is_variant_file(path) else path.parent


def version_dirs(folder: Path) -> list[Path]:
    """Numeric version folders, oldest first."""
    return sorted((p for p in Path(folder).iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def model_file(folder: Path, version: int | str, config: Any = None) -> Path:
    name = model_filename(config)
    if name is None:
        raise ValueError(f"a {config.platform or config.backend} model loads no model file of its own")
    return Path(folder) / str(version) / name


def model_folders(repository: Path) -> list[Path]:
    """The model folders of a repository (hidden folders, such as staging copies, are not models)."""
    return sorted(p for p in Path(repository).iterdir() if p.is_dir() and not p.name.startswith("."))


#: what the build keeps beside a repository (compiler/repository/swap.py, compiler/build.py), never inside it, where
#: tritonserver would take a folder for a model: the lock, the swap's journal and previous tree, the staging copies
#: (staging-<random>), the models a failed build kept from the previous output, and the server logs of a proof
SIDECARS = ("lock", "journal", "previous", "staging-", "kept", "logs")


def sidecar(repository: Path, what: str) -> Path:
    """<parent>/.<repository name>.<what>; `what` is one of SIDECARS."""
    if what not in SIDECARS:
        raise ValueError(f"unknown sidecar {what!r}")
    repository = Path(repository)
    return repository.parent / f".{repository.name}.{what}"

