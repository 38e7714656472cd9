"""One training with plain SGD, run plainly or under torchrun (tests/test_distributed.py).

    python tests/ddp_sgd_worker.py toy|aae OUT BATCH

`toy`: the linear autoencoder of tests/toy.py. `aae`: an adversarial autoencoder (three phases per
batch) made deterministic — z = μ(x), prior codes a fixed function of the label instead of random
draws — so that any number of processes must give the one-process updates. Writes OUT/initial.safetensors
(the weights before training) beside the run.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from fakes import synthetic_mnist  # noqa: E402
from toy import Toy, ToyConfig  # noqa: E402

import genae.models.aae as aae_module  # noqa: E402
from genae.models.priors import GaussianPrior  # noqa: E402
from genae.train.distributed import end_worker  # noqa: E402
from genae.train.engine import fit  # noqa: E402

kind, out, batch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
if kind == "toy":
    model = Toy(ToyConfig(epochs=2, batch_size=batch, lr=2e-5, optimizer="sgd"))
else:
    aae_module.adam = lambda params, lr, betas=(0.9, 0.999): torch.optim.SGD(list(params), lr=lr)
    GaussianPrior.sample = lambda self, labels: torch.cos(labels.float()[:, None] * 1.7 + torch.arange(self.dim))
    model = aae_module.AAE(aae_module.AAEConfig(epochs=2, batch_size=batch, lr=1e-4, n_hidden=32, n_layers=1,
                                                deterministic=True))
out.mkdir(parents=True, exist_ok=True)
if int(__import__("os").environ.get("RANK", "0")) == 0:
    save_file({k: v.clone() for k, v in model.state_dict().items()}, str(out / "initial.safetensors"))
fit(model, synthetic_mnist(200), out, device=torch.device("cpu"), quiet=True)
end_worker()   # as `genae` ends a torchrun worker
