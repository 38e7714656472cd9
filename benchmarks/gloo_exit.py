"""The smallest torchrun worker: join a gloo process group, 50 all_reduces, exit — with --destroy
leaving the group first, with --end the way `genae` ends a worker (genae.train.distributed.end_worker).
benchmarks/torchrun_exit.sh runs it many times and counts the workers that died at exit."""

import sys

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
t = torch.ones(3)
for _ in range(50):
    dist.all_reduce(t)
if "--destroy" in sys.argv:
    dist.destroy_process_group()
if "--end" in sys.argv:
    from genae.train.distributed import end_worker

    end_worker()
