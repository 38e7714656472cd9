"""The model interface: what every model offers the engine, the evaluator, the CLI, export and the
explorer — declared here, once.

Every model
  - owns its networks and its config (a `TrainConfig` subclass, saved as the run's config.json);
  - declares its training `phases()`: each `Phase` is a name, an optimizer over the phase's
    parameters and a loss function from a `Batch` to (scalar loss, {name: detached scalar});
  - turns raw images into the `Batch` its losses see with `prepare` (binarization, noise, masks);
  - reports `validation_metrics(batch)` (must include 'loss', lower is better; it picks the best
    epoch) and `test_metrics(batch)` (its own test quantities, e.g. M2's error; {} by default);
  - may reshape the data before training (`prepare_data`: hide labels) and take weights from
    other runs when training starts (`initialize`);
  - declares whether its training step is `graph_safe`: for a batch of fixed size and a fixed
    `plan_step` (the host-side choices of a step, e.g. how many of its images are labeled),
    `training_batch` and every phase run with fixed shapes, never wait on the device (no .item(),
    no nonzero, no boolean-mask indexing, no branch on a tensor's value, no copy from the host) and
    draw randomness only on the batch's device, so that the engine may capture the step once per
    plan as a CUDA graph and replay it (genae.train.steps; tests/test_graph_steps.py checks each
    declaration on the meta device).

What only some models do is declared by `capabilities` (a `Capabilities`); callers ask it and
never probe for attributes. The methods behind a capability take images in [0, 1]
(B×1×28×28), labels as int64 (B,), and return torch.distributions or pixel means in [0, 1]:

  encodes     encode(x, y=None) → q(z | x[, y]);  reconstruct(x, y=None) → pixel means
  decodes     decode(z, y=None) → p(x | z[, y])
  samples     sample(n, y=None, *, std=1.0) → n×1×28×28 pixel means
  classifies  classify_logits(x) → B×10 logits of q(y | x)
  likelihood  log_weights(batch, k) → K×B log importance weights (genae.evaluate: ELBO, IWAE)
  completes   complete(x, n) → n×B×1×28×28 completions of partly given images (Sohn et al.);
              complete_with(x, eps) → B×1×28×28, the latent noise given (B×latent_dim; ignored
              by a deterministic completer, whose latent_dim is None)
`conditional`: a label y chooses what decode and sample draw; `encodes_label`: encode needs it too;
`decodes_label`: decode reads it. `latent_dim` is the size of z (None for models without one).
A model may name sub-models worth running on their own (`parts`, e.g. the baseline inside Sohn's
CVAE) and facts a page drawing it needs (`describe`, e.g. its prior's shape, its given pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from genae.data import transforms
from genae.errors import UserError
from genae.models.config import TrainConfig

N_CLASSES = 10

LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
LoadRun = Callable[[str], "Model"]
"""How a model gets another trained run (M1+M2's M1, Sohn's baseline): a path → the loaded model.
The run-directory module passes its loader in, so models never import it."""


@dataclass
class Batch:
    x: torch.Tensor        # what the encoder sees
    y: torch.Tensor        # int64 labels (-1: hidden)
    target: torch.Tensor   # what the decoder must reproduce (x itself, unless denoising)
    n_labeled: Optional[int] = None
    """How many of y are labels (>= 0), where the host knows it without reading y (a planned
    training step); `labeled_positions` then finds them in fixed shapes."""

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, part) -> "Batch":
        return Batch(self.x[part], self.y[part], self.target[part])


def labeled_positions(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the batch's labeled (y >= 0) and unlabeled images, each in order. With
    batch.n_labeled given, found without waiting on the device (nonzero_static: fixed shapes)."""
    known = batch.y >= 0
    if batch.n_labeled is None:
        return known.nonzero().flatten(), (~known).nonzero().flatten()
    n = batch.n_labeled
    return (torch.nonzero_static(known, size=n).flatten(),
            torch.nonzero_static(~known, size=len(known) - n).flatten())


@dataclass
class Phase:
    name: str
    optimizer: torch.optim.Optimizer
    loss: LossFn
    every: int = 1
    """The phase runs on the run's steps every, 2·every, … only, counted across epochs so that it runs
    on exactly one step in `every` (its logged means are over the steps it ran)."""

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters per step)."""
    return torch.optim.Adam(list(params), lr=lr, betas=betas, fused=True)


@dataclass(frozen=True)
class Capabilities:
    """What a model offers beyond training; see the module docstring for each method."""

    conditional: bool = False
    encodes: bool = False
    encodes_label: bool = False
    decodes: bool = False
    decodes_label: bool = False
    samples: bool = False
    classifies: bool = False
    likelihood: Optional[str] = None
    """The quantity log_weights bounds, as eval.json names it: 'nll' (−log p(x)), 'conditional_nll'
    (−log p(x | y)) or 'cll' (−log p(output pixels | given pixels)); None: no likelihood."""
    completes: bool = False

    def require(self, what: str, model_name: str) -> None:
        """Raise a UserError naming the model when it lacks capability `what`."""
        if not getattr(self, what):
            raise UserError(f"a {model_name} model does not offer '{what}'")


class Model(nn.Module):
    """Base class: keeps the config, applies the config's batch transforms, declares the interface."""

    name: str = "model"

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_dim(self) -> int | None:
        """The size of z, for models that have one."""
        return None

    def parts(self) -> dict[str, "Model"]:
        """Sub-models worth running on their own (exported beside the model)."""
        return {}

    def describe(self) -> dict:
        """JSON-able facts about the model that a page drawing it needs beyond its networks."""
        return {}

    # ------------------------------------------------------------ training (every model)
    def prepare_data(self, data):
        """The data as this model trains on it (e.g. labels hidden outside a labeled subset)."""
        return data

    def initialize(self, load_run: LoadRun) -> None:
        """Called once before a fresh training starts (not on resume): take weights from other runs."""

    def plan_step(self, idx: torch.Tensor) -> tuple:
        """Called by the engine before each training step with the step's image indices on the host:
        the choices of the step that must be made there because they fix its shapes (how many of its
        images carry a label), given back to `training_batch`; a CUDA graph is captured per distinct
        plan. Default: () — the shapes follow from the batch size."""
        return ()

    def training_batch(self, x: torch.Tensor, y: torch.Tensor, plan: tuple) -> Batch:
        """The batch a training step's losses see, for the step's images and its `plan_step`: the
        engine's way in (`prepare` is everyone else's). Default: prepare(x, y)."""
        return self.prepare(x, y)

    def prepare(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
        """Images in [0, 1] → the batch the losses see: binarized if the config says so; with
        --noise the encoder sees a salt-and-pepper copy and the target stays clean."""
        if self.config.binarize == "dynamic":
            x = transforms.binarize(x, generator)
        if self.config.noise > 0:
            return Batch(x=transforms.salt_and_pepper(x, self.config.noise, generator), y=y, target=x)
        return Batch(x=x, y=y, target=x)

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    @property
    def graph_safe(self) -> bool:
        """The training step may be captured as a CUDA graph (see the module docstring)."""
        return False

    def validation_metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-batch means on held-out data; must include 'loss' (lower is better)."""
        raise NotImplementedError

    def test_metrics(self, batch: Batch) -> dict:
        """The model's own test quantities over a prepared test batch (beyond the likelihood)."""
        return {}

    # ------------------------------------------------------------ capabilities (some models)
    def _missing(self, what: str):
        return NotImplementedError(f"a {self.name} model does not offer '{what}' (see its capabilities)")

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        raise self._missing("encodes")

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise self._missing("encodes")

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None):
        raise self._missing("decodes")

    def sample(self, n: int, y: torch.Tensor | int | None = None, *, std: float = 1.0) -> torch.Tensor:
        raise self._missing("samples")

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise self._missing("classifies")

    def log_weights(self, batch: Batch, k: int) -> torch.Tensor:
        raise self._missing("likelihood")

    def complete(self, x: torch.Tensor, n: int = 1) -> torch.Tensor:
        raise self._missing("completes")

    def complete_with(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        raise self._missing("completes")


def one_hot(y: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(y, N_CLASSES).float()


def sample_labels(n: int, y: torch.Tensor | int | None, device: torch.device) -> torch.Tensor:
    """The labels of n samples: y as given (a tensor, or one label for all), else 0..9 in turn."""
    if y is None:
        y = torch.arange(n) % N_CLASSES
    elif isinstance(y, int):
        y = torch.full((n,), y)
    return y.to(device)


@torch.no_grad()
def encoded_means(model: Model, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Means of q(z | x[, y]) for a set of images, in batches."""
    with_label = model.capabilities.encodes_label
    return torch.cat([model.encode(x[i:i + batch], y[i:i + batch] if with_label else None).mean
                      for i in range(0, len(x), batch)])
