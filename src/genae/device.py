"""Where tensors live and how the CPU does arithmetic: the device a command runs on, and the
process-wide floating-point settings that every command applies first.

    device = resolve_device("auto")   # CUDA when torch sees a GPU, else the CPU
"""

from __future__ import annotations

import os
import platform

import torch

from genae.errors import UserError


def local_rank() -> int:
    """This process's GPU index under torchrun (0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' → CUDA if available, else CPU; 'cuda' without a GPU is an error, not a fallback.
    'cuda' is the local rank's GPU (torchrun); 'cuda:N', what str() of a resolved device gives
    (recipes pass it on), is GPU N."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    kind, colon, index = name.partition(":")
    if kind != "cuda" or (colon and not index.isdigit()):
        raise UserError(f"unknown device {name!r}; choose auto, cpu or cuda (or cuda:N)")
    if not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for, but torch sees no CUDA GPU")
    if colon and int(index) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", int(index) if colon else local_rank())


def slow_bf16_warning(device: torch.device) -> str | None:
    """Why --precision bf16 would be slow here, or None. CPUs without bf16 matrix instructions
    (avx512_bf16 or AMX) emulate bf16 products, several times slower than fp32 (docs/speed.md)."""
    if device.type != "cpu" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None   # torch's flags describe x86 only; ARM CPUs may have bf16 of their own
    checks = (torch.cpu._is_avx512_bf16_supported, torch.cpu._is_amx_tile_supported)
    if any(check() for check in checks):
        return None
    return (f"--precision bf16: this CPU ({torch.backends.cpu.get_cpu_capability()}) has neither avx512_bf16 "
            "nor AMX, so bfloat16 products are emulated and run several times slower than fp32; "
            "use --precision fp32 here")


def flush_denormals() -> None:
    """Treat subnormal floats as zero (FTZ/DAZ) on this thread and the threads it starts later.

    Adam's decaying moments of never-used weights (MNIST's blank border pixels) go subnormal,
    which makes CPU arithmetic much slower (docs/speed.md). The flag is per thread and OpenMP
    workers copy it when they are created, so call this before any parallel torch work
    (`genae.cli.main` does it first); otherwise the workers keep exact subnormals while the main
    thread flushes them, and the numbers depend on which thread did which chunk.
    """
    torch.set_flush_denormal(True)
