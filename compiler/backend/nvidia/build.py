"""Build NVIDIA's PyTorch backend (``libtriton_pytorch.so``) from its pinned sources for this venv's torch, once.

The library is cached under the compiler's cache folder, in a folder named by everything it depends on: the
branch's commits, the torch it links (version and git commit), the tritonserver library it is linked to (its file
name carries the wheel's hash), the compiler and this recipe. A different torch gets its own folder, so a library is
never used with a torch it was not built for; `check_fresh` says so for a folder handed over by path.

    backend = ensure(branch_for("26.11"), server_library)       # builds (about 1.5 min on 2 cores) or finds it
    backend.directory / "pytorch" / "libtriton_pytorch.so"
    backend.directory / "pytorch_aoti" / "libtriton_pytorch_aoti.so"   # the same library, for platform torch_aoti

The recipe (SOURCES.md of the pinned archives says why each step is there): CMake from the package index (the
branches of 2026 ask for 3.31.8); C++20 (torch 2.14's CMake config asks for it); no GPU, TorchVision, Torch-TRT or
NVSHMEM; FetchContent disconnected and pointed at the unpacked helpers; rapidjson installed to a prefix; common's
tests (which download googletest) left out; the `triton-pytorch-backend` target only (its install step copies and
patches torch's own libraries). Then patchelf: the wheel's server library is `libtritonserver-<hash>.so`, so the
library's NEEDED entry is renamed to it, and torch's `lib` is put on its run path.

TorchVision's operators (torchvision::nms and the rest, which traced detection models call) are in NGC's backend,
built with TRITON_PYTORCH_ENABLE_TORCHVISION against the image's libtorchvision. The package index's torchvision has
no libtorchvision, only its Python extension (`torchvision/_C*.so`), whose operators register when it loads and which
needs libtorch_python and so libpython. Both are added as NEEDED entries of the library, with a DT_RPATH (inherited
by dependencies, unlike DT_RUNPATH) through torch's, torchvision's and Python's library folders: tritonserver then
loads TorchScript models that call torchvision ops, as an NGC image does. Without a shared libpython (a static
Python build) the library is built without them and its label says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.backend.nvidia.sources import Branch, archive, unpack
from compiler.cache import cache_root
from compiler.errors import Problem, UserError

#: Bump when the recipe below changes in a way that changes the library.
RECIPE = 1
#: The backend names tritonserver looks the library up by: <dir>/<name>/libtriton_<name>.so. tritonserver 2.51
#: (core r24.10) maps platform pytorch_libtorch to backend "pytorch" and refuses torch_aoti with it ("unexpected
#: 'platform' and 'backend' pair"); the same library under the name "pytorch_aoti" loads a config that names that
#: backend and platform torch_aoti, and picks its AOTI path from the platform (src/libtorch.cc).
BACKEND_NAMES = ("pytorch", "pytorch_aoti")
STAMP = "stamp.json"
LOG = "build.log"


def library_name(backend: str) -> str:
    return f"libtriton_{backend}.so"


class BackendBuildError(UserError):
    """A step of the backend's build failed: the message names it, the log it wrote, and where to get help."""


class BackendStale(UserError):
    """A built library does not belong to this venv's torch (or to this server)."""


@dataclass(frozen=True)
class TorchInstall:
    version: str
    git_version: str
    root: Path  # site-packages/torch

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def includes(self) -> list[Path]:
        return [self.root / "include", self.root / "include" / "torch" / "csrc" / "api" / "include"]


def torch_install() -> TorchInstall:
    """This venv's torch, found without importing it (an import costs about 2 CPU-s)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise BackendStale(Problem("torch is not installed in this environment", hint="run `make setup`"))
    root = Path(next(iter(spec.submodule_search_locations))).resolve()  # the venv's, not a clone's .venv link
    text = (root / "version.py").read_text()
    git = re.search(r"^git_version\s*=\s*'([^']*)'", text, re.M)
    return TorchInstall(importlib.metadata.version("torch"), git.group(1) if git else "", root)


@dataclass(frozen=True)
class TorchVisionOps:
    """torchvision's operator library and the libpython it needs, or None where either is missing."""

    version: str
    library: Path
    python_library: Path

    @classmethod
    def find(cls) -> TorchVisionOps | None:
        spec = importlib.util.find_spec("torchvision")
        libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
        if spec is None or not spec.submodule_search_locations or not libdir or not soname:
            return None
        root = Path(next(iter(spec.submodule_search_locations))).resolve()
        ops = sorted(root.glob("_C*.so"))
        python = (Path(libdir) / soname).resolve()
        if not ops or not python.is_file():
            return None
        return cls(importlib.metadata.version("torchvision"), ops[0], python)


@dataclass(frozen=True)
class NativeBackend:
    """A built library: `directory` holds one folder per name in BACKEND_NAMES, ready for --backend-directory."""

    branch: Branch
    directory: Path
    stamp: dict[str, str]

    @property
    def label(self) -> str:
        """What a report says it ran on: "NVIDIA pytorch_backend r26.05 (55bbe27), built for torch 2.14.1+cu130"."""
        vision = f", torchvision {self.stamp['torchvision']} ops" if self.stamp.get("torchvision") else ""
        return f"NVIDIA {self.branch.label}, built for torch {self.stamp['torch']}{vision}"

    def library(self, backend: str = "pytorch") -> Path:
        return self.directory / backend / library_name(backend)


def _compiler_version() -> str:
    try:
        return subprocess.run(["c++", "-dumpfullversion"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def expected_stamp(branch: Branch, server_library: Path, torch: TorchInstall | None = None) -> dict[str, str]:
    """Everything a library of `branch` depends on here; its hash names the cache folder."""
    torch = torch or torch_install()
    vision = TorchVisionOps.find()
    return {
        "branch": branch.ref,
        "commits": " ".join(f"{s.repo}@{s.commit}" for s in branch.sources),
        "torch": torch.version,
        "torch_git": torch.git_version,
        "torch_lib": str(torch.lib),  # on the library's run path: another venv's torch is another library
        "torchvision": vision.version if vision else "",
        "server_library": server_library.name,
        "compiler": f"c++ {_compiler_version()}",
        "recipe": str(RECIPE),
    }


def cache_folder(stamp: dict[str, str]) -> Path:
    key = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / "pytorch-backend" / f"{stamp['branch']}-{key}"


def check_fresh(directory: Path, branch: Branch, server_library: Path) -> NativeBackend:
    """The library in `directory`, if it was built for this torch and this server; BackendStale otherwise."""
    stamp_file = directory / STAMP
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        raise BackendStale(Problem(f"{directory} holds no finished build of NVIDIA's PyTorch backend (no {STAMP})",
                                   hint="run `make setup`")) from None
    expected = expected_stamp(branch, server_library)
    differ = [f"{key} {stamp.get(key)!r}, here {value!r}" for key, value in expected.items() if stamp.get(key) != value]
    if differ:
        raise BackendStale(Problem(
            f"the PyTorch backend in {directory} was built for another environment: {'; '.join(differ)}",
            hint="run `make setup` to build it for this one (a library built for another torch crashes or refuses "
                 "models)"))
    missing = [str(directory / name / library_name(name)) for name in BACKEND_NAMES
               if not (directory / name / library_name(name)).is_file()]
    if missing:
        raise BackendStale(Problem(f"{', '.join(missing)} missing", hint="run `make setup`"))
    return NativeBackend(branch, directory, stamp)


def ensure(branch: Branch, server_library: Path, progress: Callable[[str], None] = lambda _: None) -> NativeBackend:
    """The library of `branch` for this environment: the cached one, else built now (processes that want the same
    one take turns; the second finds it built)."""
    stamp = expected_stamp(branch, server_library)
    folder = cache_folder(stamp)
    if (folder / STAMP).is_file():
        return check_fresh(folder, branch, server_library)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / STAMP).is_file():
            _build(branch, server_library, stamp, folder, progress)
    return check_fresh(folder, branch, server_library)


def _compiled(branch: Branch, torch: TorchInstall, stamp: dict[str, str], steps: _Steps,
              progress: Callable[[str], None]) -> Path:
    """The library as compiled, before it is linked to a server and to torchvision: cached by what the compile
    depends on (the commits, torch, the compiler, the recipe), so that a new server wheel only links again."""
    compile_key = {key: stamp[key] for key in ("branch", "commits", "torch", "torch_git", "compiler", "recipe")}
    key = hashlib.sha256(json.dumps(compile_key, sort_keys=True).encode()).hexdigest()[:16]
    done = cache_root() / "pytorch-backend" / "compiled" / f"{branch.ref}-{key}" / library_name("pytorch")
    if done.is_file():
        return done
    progress(f"compiling NVIDIA's PyTorch backend ({branch.label}) for torch {stamp['torch']} "
             "(once per torch and branch; about 1.5 min on 2 cores)")
    work = steps.log.parent
    cmake = _tool("cmake")
    trees = {}
    for source in branch.sources:
        try:
            trees[source.repo] = unpack(archive(source, cache_root() / "pytorch-backend" / "sources"),
                                        work / "src" / source.repo)
        except UserError:
            raise
        except Exception as err:  # a corrupt archive, a full disk
            steps.fail(f"unpack {source.name}", str(err))
    common_tests = trees["common"] / "src" / "CMakeLists.txt"
    if common_tests.is_file():  # common's tests download googletest at configure time
        common_tests.write_text(re.sub(r"(?m)^add_subdirectory\(test\)", "# add_subdirectory(test)",
                                       common_tests.read_text()))
    rapidjson = work / "rapidjson"
    steps.run("configure rapidjson", [cmake, "-S", str(trees["rapidjson"]), "-B", str(work / "rapidjson-build"),
                                      "-DRAPIDJSON_BUILD_DOCS=OFF", "-DRAPIDJSON_BUILD_EXAMPLES=OFF",
                                      "-DRAPIDJSON_BUILD_TESTS=OFF", f"-DCMAKE_INSTALL_PREFIX={rapidjson}"])
    steps.run("install rapidjson", [cmake, "--install", str(work / "rapidjson-build")])
    build = work / "build"
    steps.run("configure pytorch_backend", [
        cmake, "-S", str(trees["pytorch_backend"]), "-B", str(build), "-Wno-dev",
        "-DCMAKE_BUILD_TYPE=Release", "-DTRITON_MIN_CXX_STANDARD=20",
        "-DTRITON_ENABLE_GPU=OFF", "-DTRITON_PYTORCH_ENABLE_TORCHVISION=OFF", "-DTRITON_PYTORCH_ENABLE_TORCHTRT=OFF",
        "-DTRITON_PYTORCH_NVSHMEM=OFF",
        "-DTRITON_PYTORCH_INCLUDE_PATHS=" + ";".join(str(p) for p in torch.includes),
        f"-DTRITON_PYTORCH_LIB_PATHS={torch.lib}",
        "-DFETCHCONTENT_FULLY_DISCONNECTED=ON",
        *(f"-DFETCHCONTENT_SOURCE_DIR_REPO-{repo.upper()}={trees[repo]}" for repo in ("common", "core", "backend")),
        f"-DRapidJSON_DIR={rapidjson / 'lib' / 'cmake' / 'RapidJSON'}",
        f"-DRAPIDJSON_INCLUDE_DIRS={rapidjson / 'include'}",  # common reads this spelling; rapidjson sets the other
        f"-DPython3_EXECUTABLE={sys.executable}", f"-DPython3_INCLUDE_DIR={sysconfig.get_paths()['include']}",
    ])
    steps.run("compile libtriton_pytorch.so", [cmake, "--build", str(build), "--target", "triton-pytorch-backend",
                                               "-j", str(max(1, os.cpu_count() or 1))])
    built = build / library_name("pytorch")
    if not built.is_file():
        steps.fail("compile libtriton_pytorch.so", f"{built} was not written")
    done.parent.mkdir(parents=True, exist_ok=True)
    partial = done.with_suffix(f".part{os.getpid()}")
    shutil.copy2(built, partial)
    partial.rename(done)
    return done


def _tool(name: str) -> str:
    """cmake and patchelf from this venv (the package index's wheels), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise BackendBuildError(Problem(f"{name} is not installed", hint="run `make setup` (requirements.txt pins "
                                                                          f"the {name} wheel)"))
    return found


class _Steps:
    """Runs the build's commands into one log; a failure names its step and the log."""

    def __init__(self, log: Path, branch: Branch, progress: Callable[[str], None]) -> None:
        self.log = log
        self.branch = branch
        self.progress = progress

    def run(self, step: str, command: list[str], cwd: Path | None = None) -> None:
        with open(self.log, "a") as out:
            out.write(f"\n=== {step}\n$ {' '.join(command)}\n")
            out.flush()
            done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            self.fail(step, f"exited with {done.returncode}")

    def fail(self, step: str, what: str) -> None:
        tail = self.log.read_text(errors="replace").splitlines()[-12:] if self.log.is_file() else []
        errors = [line for line in tail if "error" in line.lower()] or tail[-3:]
        raise BackendBuildError(Problem(
            f"building NVIDIA's PyTorch backend ({self.branch.label}) failed at '{step}': {what}"
            + ("\n    " + "\n    ".join(errors) if errors else ""),
            hint=f"the whole log is {self.log}; the build needs a C++20 compiler (g++ 12 here) and the sources "
                 "named in compiler/backend/nvidia/sources.py. Report it with that log; nothing falls back to another "
                 "backend"))


def _build(branch: Branch, server_library: Path, stamp: dict[str, str], folder: Path,
           progress: Callable[[str], None]) -> None:
    started = time.monotonic()
    work = folder.parent / f".{folder.name}.work-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / LOG
    steps = _Steps(log, branch, progress)
    patchelf = _tool("patchelf")
    torch = torch_install()
    built = _compiled(branch, torch, stamp, steps, progress)
    out = work / "out"
    vision = TorchVisionOps.find() if stamp.get("torchvision") else None
    vision_needed = ["--add-needed", vision.python_library.name, "--add-needed", vision.library.name] if vision else []
    run_path = [torch.lib, *([vision.library.parent, vision.python_library.parent] if vision else [])]
    for name in BACKEND_NAMES:
        target = out / name / library_name(name)
        target.parent.mkdir(parents=True)
        shutil.copy2(built, target)  # a copy each: the dynamic loader would hand one file's handle to both names
        steps.run(f"link {target.name} to {server_library.name} and torch", [
            patchelf, "--replace-needed", "libtritonserver.so", server_library.name, *vision_needed,
            "--force-rpath", "--set-rpath", ":".join(str(p) for p in run_path), str(target)])
    seconds = time.monotonic() - started
    (out / STAMP).write_text(json.dumps({**stamp, "built_in_s": f"{seconds:.0f}"}, indent=2) + "\n")
    shutil.copy2(log, out / LOG)
    shutil.rmtree(folder, ignore_errors=True)
    out.rename(folder)
    shutil.rmtree(work, ignore_errors=True)
    progress(f"built NVIDIA's PyTorch backend ({branch.label}) in {seconds:.0f} s: {folder}")
