"""Data-parallel training over processes started by `torchrun` (gloo on CPU, NCCL on CUDA).

Each process computes the gradient of the mean loss over its share of the global batch; the
shares are weighted by size and summed across processes, so the update equals the one a single
process makes on the whole global batch. We all-reduce gradients per phase ourselves instead of
wrapping the model in DistributedDataParallel because a phase may run parts of the model without
gradient (the AAE's discriminator phase runs the encoder), which DDP's reducer does not allow.

    torchrun --nproc-per-node 2 -m genae train vae --batch-size 128   # 64 images per process
"""

from __future__ import annotations

import atexit
import os
import sys

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> tuple[int, int]:
    """(rank, world_size); joins the process group when started by torchrun with >1 process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # left to the interpreter's exit, the group's threads can die in std::terminate (SIGABRT)
        atexit.register(_leave)
    return dist.get_rank(), dist.get_world_size()


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def end_worker() -> None:
    """End a torchrun worker whose work is done: leave the process group, flush the output and exit
    at once, skipping the C++ static destructors of interpreter exit, in which PyTorch's gloo backend
    can still abort (std::terminate) and turn a finished run into a failed job. A no-op outside a
    process group."""
    if not dist.is_initialized():
        return
    _leave()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def rank_from_env() -> int:
    """This process's rank in a torchrun job (0 outside one), before the process group exists."""
    return int(os.environ.get("RANK", "0"))


def sum_across(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (in place; a no-op without a process group)."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(params: list[torch.nn.Parameter], weight: float) -> None:
    """grad ← Σ_ranks weight_r · grad_r, with weight_r = local batch / global batch."""
    grads = [p.grad for p in params if p.grad is not None]
    if not dist.is_initialized() or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads]) * weight
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
