"""Sohn, Lee & Yan (2015)'s CVAE for structured output prediction: complete an MNIST digit from
1, 2 or 3 of its quadrants (as in the Pyro tutorial, the source).

x is the given part of the image (unknown pixels set to −1), y the remaining pixels.
Baseline:      ŷ = σ(NN(x)), loss −log p(y | x) = BCE summed over the output pixels only.
CVAE:          prior        p(z | x)      = N(μ_p, σ_p²), fed x with the frozen baseline's ŷ in the gaps
               recognition  q(z | x, y)   = N(μ_q, σ_q²), fed the whole image
               generation   p(y | x, z)   = Bernoulli(σ(g(z, x)))  (--generation-input z: g(z) only, as Pyro)
CVAE loss:     −ELBO = −E_q[log p(y | x, z)] + KL(q(z | x, y) ‖ p(z | x))
GSNN loss:     −E_{p(z | x)}[log p(y | x, z)]                    (trains the path used at test time)
hybrid:        α·CVAE + (1 − α)·GSNN
Conditional log-likelihood (CLL), by importance sampling with q as the proposal, S samples:
    log p(y | x) ≈ log (1/S) Σ_s p(y | x, z_s) p(z_s | x) / q(z_s | x, y),   z_s ~ q(z | x, y)
Pixels are grey levels with a Bernoulli likelihood (BCE with logits), as in the tutorial.

Quadrants given as input (fixed): 1 → bottom-left (the tutorial's); 2 → the left half;
3 → all but the bottom-right.

    genae train sohn-baseline --quadrants 1 --out runs/nn-q1
    genae train sohn-cvae --quadrants 1 --baseline runs/nn-q1 --out runs/cvae-q1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch.distributions import kl_divergence

from genae.data.transforms import quadrant_mask
from genae.errors import UserError
from genae.models.base import Batch, Capabilities, LoadRun, Model, Phase, adam
from genae.models.config import TrainConfig, check_config, require_fraction, require_positive
from genae.nets import IMAGE_SIZE, Decoder, Encoder, diagonal_gaussian, mlp
from genae.nets.heads import PixelBernoulli

GIVEN = {1: ("bottom_left",), 2: ("top_left", "bottom_left"), 3: ("top_left", "bottom_left", "top_right")}
UNKNOWN = -1.0  # the value of the pixels the input does not give


@dataclass
class SohnConfig(TrainConfig):
    quadrants: Literal[1, 2, 3] = 1
    """Quadrants given as input: 1 bottom-left; 2 the left half; 3 all but the bottom-right."""
    n_hidden: int = 500
    """Units in each hidden layer of every network."""
    n_layers: int = 2
    """Hidden layers of every network."""
    epochs: int = 50
    """At most this many epochs (early stopping decides)."""
    patience: int = 3
    """Stop after this many epochs without a better validation loss."""


@dataclass
class SohnCVAEConfig(SohnConfig):
    dim_z: int = 200
    """Latent dimensions."""
    baseline: Optional[str] = None
    """Run directory of a trained sohn-baseline with the same --quadrants (its weights are copied and frozen)."""
    generation_input: Literal["xz", "z"] = "xz"
    """What p(y|x,z) sees: 'xz' the paper's (z and the given pixels), 'z' the Pyro tutorial's."""
    objective: Literal["cvae", "gsnn", "hybrid"] = "cvae"
    """'cvae' −ELBO; 'gsnn' −E_p(z|x) log p(y|x,z); 'hybrid' α·cvae + (1−α)·gsnn."""
    alpha: float = 0.5
    """Weight of the CVAE term in the hybrid objective."""
    sigma: Literal["exp", "softplus"] = "exp"
    """Std parametrisation of p(z|x) and q(z|x,y)."""


def check_sohn_config(config: SohnConfig) -> None:
    """Reject values no run can use, naming the option."""
    check_config(config)
    require_positive(n_hidden=config.n_hidden, n_layers=config.n_layers)
    if isinstance(config, SohnCVAEConfig):
        require_positive(dim_z=config.dim_z)
        require_fraction("alpha", config.alpha, closed=True)


def masks(quadrants: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(given, output) 1×28×28 masks: a partition of the image."""
    if quadrants not in GIVEN:
        raise UserError(f"--quadrants {quadrants}: choose 1, 2 or 3")
    given = quadrant_mask(GIVEN[quadrants])
    return given, 1 - given


def output_log_prob(logits: torch.Tensor, image: torch.Tensor, output_mask: torch.Tensor) -> torch.Tensor:
    """log p(y | …): Bernoulli log-probability summed over the output pixels only (…×B)."""
    return (PixelBernoulli(logits=logits.float(), validate_args=False).log_prob(image) * output_mask).sum((-3, -2, -1))


class _Quadrants(Model):
    """Shared by both models: masks as buffers, and `prepare` hides the output pixels."""

    def __init__(self, config: SohnConfig):
        super().__init__(config)
        check_sohn_config(config)
        given, output = masks(config.quadrants)
        self.register_buffer("given_mask", given, persistent=False)
        self.register_buffer("output_mask", output, persistent=False)

    def hide(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input: the given quadrants of images x, UNKNOWN elsewhere."""
        return torch.where(self.given_mask.bool(), x, torch.full_like(x, UNKNOWN))

    @property
    def graph_safe(self) -> bool:
        return True

    def prepare(self, x, y, generator=None) -> Batch:
        full = super().prepare(x, y, generator).x
        return Batch(x=self.hide(full), y=y, target=full)

    def describe(self) -> dict:
        """Which pixels the model is given (1) and which it completes (0), row-major."""
        return {"quadrants": self.config.quadrants, "given_mask": [int(v) for v in self.given_mask.flatten()]}


class SohnBaseline(_Quadrants):
    """The deterministic network: ŷ = σ(NN(x)), trained with BCE on the output pixels."""

    name = "sohn-baseline"

    def __init__(self, config: SohnConfig):
        super().__init__(config)
        self.net = Encoder(mlp([IMAGE_SIZE, *[config.n_hidden] * config.n_layers, IMAGE_SIZE]))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(completes=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1, 1, 28, 28)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The whole image for a model input x (`hide`): the given pixels kept, the others predicted
        (probabilities)."""
        return torch.where(self.given_mask.bool(), x, torch.sigmoid(self.logits(x)))

    @torch.no_grad()
    def complete(self, x: torch.Tensor, n: int = 1) -> torch.Tensor:
        """The one deterministic completion of images x (only their given quadrants are read), n times:
        n×B×1×28×28."""
        return self.predict(self.hide(x)).expand(n, *x.shape)

    def complete_with(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The completion (deterministic: eps is not used)."""
        return self.predict(self.hide(x))

    def loss(self, batch: Batch):
        nll = -output_log_prob(self.logits(batch.x), batch.target, self.output_mask).mean()
        return nll, {"loss": nll.detach()}

    def phases(self):
        return [Phase("baseline", adam(self.parameters(), lr=self.config.lr), self.loss)]

    def validation_metrics(self, batch: Batch):
        nll = -output_log_prob(self.logits(batch.x), batch.target, self.output_mask).mean()
        return {"loss": nll}

    @torch.no_grad()
    def test_metrics(self, batch: Batch) -> dict:
        nll = -output_log_prob(self.logits(batch.x), batch.target, self.output_mask)
        return {"nll": nll.mean().item(),
                "nll_meaning": "−log p(y|x) of the deterministic prediction: BCE summed over the output pixels"}


class SohnCVAE(_Quadrants):
    """Prior, recognition and generation networks, and the frozen baseline; see the module docstring."""

    name = "sohn-cvae"

    def __init__(self, config: SohnCVAEConfig):
        super().__init__(config)
        hidden = [config.n_hidden] * config.n_layers
        self.baseline = SohnBaseline(SohnConfig(quadrants=config.quadrants, n_hidden=config.n_hidden,
                                                n_layers=config.n_layers)).requires_grad_(False)
        self.prior_net = Encoder(mlp([IMAGE_SIZE, *hidden, 2 * config.dim_z]))
        self.recognition_net = Encoder(mlp([IMAGE_SIZE, *hidden, 2 * config.dim_z]))
        cond = IMAGE_SIZE if config.generation_input == "xz" else 0
        self.generation_net = Decoder(mlp([config.dim_z + cond, *hidden, IMAGE_SIZE]), cond_dim=cond)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(completes=True, likelihood="cll")

    @property
    def latent_dim(self) -> int:
        return self.config.dim_z

    def parts(self) -> dict[str, Model]:
        return {"baseline": self.baseline}

    def initialize(self, load_run: LoadRun) -> None:
        """Copy the trained baseline's weights (before training starts, not on resume)."""
        if not self.config.baseline:
            raise UserError("sohn-cvae needs --baseline DIR: a trained sohn-baseline run (the tutorial "
                             "trains the baseline first and freezes it)")
        baseline = load_run(self.config.baseline)
        if not isinstance(baseline, SohnBaseline) or baseline.config.quadrants != self.config.quadrants:
            raise UserError(f"--baseline {self.config.baseline}: need a sohn-baseline run with --quadrants "
                             f"{self.config.quadrants}")
        self.baseline.load_state_dict(baseline.state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        self.baseline.eval()  # frozen
        return self

    # ------------------------------------------------------------------ the three networks
    def prior(self, x: torch.Tensor):
        """p(z | x), fed the given pixels with the baseline's prediction in the gaps."""
        return diagonal_gaussian(self.prior_net(self.baseline.predict(x)), self.config.sigma)

    def recognition(self, x: torch.Tensor, target: torch.Tensor):
        """q(z | x, y): the given pixels and the true output pixels, i.e. the whole image."""
        return diagonal_gaussian(self.recognition_net(torch.where(self.given_mask.bool(), x, target)),
                                 self.config.sigma)

    def generation_logits(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(y | x, z) for z of shape …×B×d (x: B×1×28×28, broadcast over samples)."""
        c = x.flatten(1) if self.config.generation_input == "xz" else None
        return self.generation_net(z, c)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, n: int = 1) -> torch.Tensor:
        """n completions of images x (only their given quadrants are read), n×B×1×28×28:
        z ~ p(z|x), the given pixels kept, the others p(y|x,z)'s means."""
        x = self.hide(x)
        z = self.prior(x).sample((n,))
        return torch.where(self.given_mask.bool(), x, torch.sigmoid(self.generation_logits(z, x)))

    def complete_with(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """One completion per image with the prior's noise given: z = μ_p(x) + σ_p(x)·eps."""
        x = self.hide(x)
        p = self.prior(x)
        z = p.mean + p.stddev * eps
        return torch.where(self.given_mask.bool(), x, torch.sigmoid(self.generation_logits(z, x)))

    # ------------------------------------------------------------------ training
    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        p, q = self.prior(batch.x), self.recognition(batch.x, batch.target)
        rec = -output_log_prob(self.generation_logits(q.rsample(), batch.x), batch.target, self.output_mask)
        terms = {"rec": rec, "kl": kl_divergence(q, p)}
        if self.config.objective != "cvae":
            terms["gsnn"] = -output_log_prob(self.generation_logits(p.rsample(), batch.x), batch.target,
                                             self.output_mask)
        return terms

    def _objective(self, terms):
        cvae = terms["rec"] + terms["kl"]
        alpha = {"cvae": 1.0, "gsnn": 0.0, "hybrid": self.config.alpha}[self.config.objective]
        return cvae if alpha == 1 else alpha * cvae + (1 - alpha) * terms["gsnn"]

    def loss(self, batch: Batch):
        terms = self.loss_terms(batch)
        loss = self._objective(terms).mean()
        parts = {"loss": loss.detach(), "rec": terms["rec"].mean().detach(), "kl": terms["kl"].mean().detach()}
        return loss, parts

    def phases(self):
        trainable = [p for p in self.parameters() if p.requires_grad]
        return [Phase("cvae", adam(trainable, lr=self.config.lr), self.loss)]

    def validation_metrics(self, batch: Batch):
        terms = self.loss_terms(batch)
        return {"loss": self._objective(terms).mean(), "rec": terms["rec"].mean(), "kl": terms["kl"].mean(),
                "neg_elbo": (terms["rec"] + terms["kl"]).mean()}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def log_weights(self, batch: Batch, samples: int) -> torch.Tensor:
        """S×B: log p(y|x,z_s) + log p(z_s|x) − log q(z_s|x,y), z_s ~ q(z|x,y): their log-mean-exp
        is the CLL's importance-sampling estimate (module docstring)."""
        p, q = self.prior(batch.x), self.recognition(batch.x, batch.target)
        z = q.sample((samples,))
        log_py = output_log_prob(self.generation_logits(z, batch.x), batch.target, self.output_mask)
        return log_py + p.log_prob(z) - q.log_prob(z)
