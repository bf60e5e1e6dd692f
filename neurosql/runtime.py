"""Runtime setup (threads, determinism, device) and resource measurement."""

import os
import platform
import resource
import sys
from typing import Any

import torch


def configure_runtime(runtime: dict[str, Any]) -> dict[str, Any]:
    """Apply thread count and determinism settings; return them for run metadata."""
    threads = int(runtime.get("threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    deterministic = bool(runtime.get("deterministic", True))
    # warn_only keeps CUDA runs going when an op has no deterministic kernel;
    # on CPU every op used here is deterministic.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if deterministic and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    return {
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": deterministic,
        "dtype": str(torch.get_default_dtype()).replace("torch.", ""),
        "torch": str(torch.__version__),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def resolve_device(name: str, setting: str = "runtime.device") -> torch.device:
    """Map 'cpu', 'cuda[:N]' or 'auto' to a torch.device; ``setting`` names the key in errors."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"{setting} is {name!r}; expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"{setting} is {name!r} but torch reports no CUDA device; "
            f"set {setting} to 'cpu' or 'auto' in params.yaml"
        )
    return torch.device(name)


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_cuda_mb(device: torch.device) -> float | None:
    """Return peak CUDA memory allocated in MiB, or None on CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20
