"""Build rocq: the Python package `rocq` (sources in torch_ops/) and its extension rocq._C,
compiled by CMake + ninja against the installed torch.

Backend: ROCm torch -> HIP kernels, CUDA torch with nvcc -> the same .hip sources as CUDA,
otherwise CPU only. ROCQ_BACKEND=cpu|cuda|hip overrides; ROCQ_GPU_ARCHS (or PYTORCH_ROCM_ARCH /
TORCH_CUDA_ARCH_LIST) picks the GPU targets; MAX_JOBS limits parallel compile jobs.

Install with the torch you will run against already installed:
    pip install --no-build-isolation -e .
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def choose_backend(torch) -> str:
    forced = os.environ.get("ROCQ_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("cpu", "cuda", "hip"):
            raise SystemExit(f"ROCQ_BACKEND must be cpu, cuda or hip, got {forced!r}")
        return forced
    if getattr(torch.version, "hip", None):
        return "hip"
    if torch.version.cuda:
        from torch.utils.cpp_extension import CUDA_HOME

        if shutil.which("nvcc") or (CUDA_HOME and Path(CUDA_HOME, "bin", "nvcc").exists()):
            return "cuda"
        print("rocq: torch has CUDA but no nvcc was found; building the CPU backend only")
    return "cpu"


def gpu_archs(backend: str) -> str:
    if os.environ.get("ROCQ_GPU_ARCHS"):
        return os.environ["ROCQ_GPU_ARCHS"]
    if backend == "hip":
        return os.environ.get("PYTORCH_ROCM_ARCH", "gfx90a;gfx942;gfx1100").replace(" ", ";")
    if backend == "cuda":
        lst = os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0")
        archs = []
        for a in lst.replace(",", ";").replace(" ", ";").split(";"):
            a = a.strip().replace("+PTX", "")
            if a:
                archs.append(a.replace(".", ""))
        return ";".join(archs)
    return ""


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import torch

        backend = choose_backend(torch)
        archs = gpu_archs(backend)
        print(f"rocq: building the {backend} backend" + (f" for {archs}" if archs else "") +
              f" against torch {torch.__version__}", flush=True)
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / f"cmake-{backend}"
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = "Debug" if self.debug else "Release"
        args = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            f"-DCMAKE_BUILD_TYPE={cfg}",
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY_{cfg.upper()}={out_dir}",
            f"-DROCQ_BACKEND={backend}",
            f"-DROCQ_GPU_ARCHS={archs}",
        ]
        if shutil.which("ninja"):
            args += ["-G", "Ninja"]
        subprocess.run(args, check=True)
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build_dir), "--config", cfg, "-j", jobs], check=True)


setup(
    name="rocq",
    version="0.1.0",
    description="Quantized LLM weights (GGUF, OCP MX) kept quantized on AMD (HIP) and NVIDIA GPUs, as PyTorch ops",
    packages=["rocq"],
    package_dir={"rocq": "torch_ops"},
    ext_modules=[CMakeExtension("rocq._C")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.10",
    install_requires=["numpy"],
    entry_points={"console_scripts": ["rocq=rocq.__main__:main"]},
    zip_safe=False,
)
