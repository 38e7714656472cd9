"""VAE, β-VAE and conditional VAE (Kingma et al. 2014's M2 with every label observed).

Generative model:  z ~ p(z) = N(0, I),   x | z, y ~ Bernoulli(sigmoid(decoder(z, y)))
Guide:             q(z | x, y) = N(μ(x, y), σ²(x, y))
y is the one-hot label for the CVAE and absent for the VAE.

Loss per image (the negative β-ELBO), summed over pixels and latent dimensions, averaged over the
batch, in nats:  −E_q[log p(x | z, y)] + β · KL(q(z | x, y) ‖ p(z)),
with one reparametrised sample for the expectation and the KL in closed form. β = 1 is the ELBO.

    genae train cvae --dim-z 2 --epochs 20 --out runs/cvae
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.distributions import kl_divergence

from genae.errors import UserError
from genae.models.base import N_CLASSES, Batch, Capabilities, Model, Phase, adam, one_hot, sample_labels
from genae.models.config import TrainConfig, check_config, check_kl_weight, require_positive
from genae.nets import Architecture, bernoulli_image, build_networks, diagonal_gaussian, standard_normal


@dataclass
class VAEConfig(TrainConfig):
    dim_z: int = 20
    """Latent dimensions."""
    n_hidden: int = 500
    """Units in each hidden layer of encoder and decoder."""
    n_layers: int = 2
    """Hidden layers in encoder and decoder (1 with --n-hidden 400 is pytorch/examples' VAE)."""
    arch: Architecture = "mlp"
    """mlp (--n-layers × --n-hidden), fc3, cnn2, cnn3 or conv (genae.nets); --dry-run prints their
    sizes."""
    beta: float = 1.0
    """Weight β of the KL term, 0 … 10⁶ (1: the ELBO; 0: a plain autoencoder)."""
    sigma: Literal["exp", "softplus"] = "exp"
    """Encoder std: 'exp' σ = exp(½·logvar); 'softplus' σ = softplus(ρ)."""


class VAE(Model):
    """VAE (conditional=False) or CVAE (conditional=True); see the module docstring."""

    def __init__(self, config: VAEConfig, conditional: bool = False):
        super().__init__(config)
        check_config(config)
        check_kl_weight(config.beta)
        require_positive(dim_z=config.dim_z, n_hidden=config.n_hidden, n_layers=config.n_layers)
        self.conditional = conditional
        self.name = "cvae" if conditional else "vae"
        self._capabilities = Capabilities(conditional=conditional, encodes=True, encodes_label=conditional,
                                          decodes=True, decodes_label=conditional, samples=True,
                                          likelihood="conditional_nll" if conditional else "nll")
        self.encoder, self.decoder = build_networks(
            config.arch, dim_z=config.dim_z, n_hidden=config.n_hidden, n_layers=config.n_layers,
            cond_dim=N_CLASSES if conditional else 0)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def latent_dim(self) -> int:
        return self.config.dim_z

    # ------------------------------------------------------------ the generative interface
    def _condition(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise UserError("the CVAE needs labels y for encode/decode")
        return one_hot(y)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """q(z | x[, y]) as a torch Independent Normal."""
        return diagonal_gaussian(self.encoder(x, self._condition(y)), self.config.sigma)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None):
        """p(x | z[, y]) as independent Bernoulli pixels (B×1×28×28)."""
        return bernoulli_image(self.decoder(z, self._condition(y)))

    def prior(self, n: int):
        return standard_normal((n, self.config.dim_z), self.device)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None, *, std: float = 1.0) -> torch.Tensor:
        """n images (pixel means in [0, 1]) decoded from z ~ N(0, std²·I): std=1 samples the prior,
        std=0.1 stays near its mean (the architectures source's figures), std=0 decodes z = 0. A CVAE without y
        cycles through the labels 0..9."""
        if std < 0:
            raise UserError(f"std {std}: the scale of z must be >= 0")
        if self.conditional:
            y = sample_labels(n, y, self.device)
        z = self.prior(n).sample() * std
        return self.decode(z, y if self.conditional else None).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the encoder's mean: the deterministic reconstruction, pixel means in [0, 1]."""
        y = y if self.conditional else None
        return self.decode(self.encode(x, y).mean, y).mean

    # ------------------------------------------------------------ training
    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-image reconstruction NLL and KL (vectors of length B), in nats."""
        y = batch.y if self.conditional else None
        q = self.encode(batch.x, y)
        z = q.rsample()
        rec = -self.decode(z, y).log_prob(batch.target)
        kl = kl_divergence(q, self.prior(len(batch)))
        return {"rec": rec, "kl": kl}

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = self.loss_terms(batch)
        rec, kl = terms["rec"].mean(), terms["kl"].mean()
        loss = rec + self.config.beta * kl
        return loss, {"loss": loss.detach(), "rec": rec.detach(), "kl": kl.detach()}

    @property
    def graph_safe(self) -> bool:
        return True

    def phases(self) -> list[Phase]:
        return [Phase("vae", adam(self.parameters(), lr=self.config.lr), self.loss)]

    def validation_metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        terms = self.loss_terms(batch)
        rec, kl = terms["rec"].mean(), terms["kl"].mean()
        return {"loss": rec + self.config.beta * kl, "rec": rec, "kl": kl, "elbo": -(rec + kl)}

    @torch.no_grad()
    def log_weights(self, batch: Batch, k: int) -> torch.Tensor:
        """K×B log importance weights log p(x, z_k | y) − log q(z_k | x, y), z_k ~ q(z | x, y), for
        the images batch.x (genae.evaluate.likelihood turns them into the ELBO and IWAE bounds)."""
        y = batch.y if self.conditional else None
        q = self.encode(batch.x, y)
        z = q.sample((k,))                                       # K×B×d
        log_px = self.decode(z, y).log_prob(batch.x)             # K×B, x broadcast over the samples
        return log_px + self.prior(1).log_prob(z) - q.log_prob(z)
