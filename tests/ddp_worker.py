"""Trains the toy model through the engine; run plainly or under torchrun (tests/test_cli.py)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from fakes import synthetic_mnist  # noqa: E402
from toy import Toy, ToyConfig  # noqa: E402

from genae.train.distributed import end_worker  # noqa: E402
from genae.train.engine import fit  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
model = Toy(ToyConfig(epochs=2, batch_size=64))
fit(model, synthetic_mnist(200), Path(sys.argv[1]), device=torch.device("cpu"), quiet=True)
end_worker()   # as `genae` ends a torchrun worker
