"""Adversarial autoencoders (Makhzani et al. 2015, after a TensorFlow reproduction: the AAE source).

An autoencoder whose code distribution q(z) = ∫ q(z|x) p_data(x) dx is pushed towards a prior p(z)
by a discriminator D, as in a GAN, instead of by a KL term. q(z|x) = N(μ(x), σ²(x)) sampled by
reparametrisation (the source's choice; --deterministic: z = μ(x), the paper's). Images enter the
encoder scaled to [-1, 1]; the decoder ends in tanh.

Modes (--mode):
  unsupervised    D(z) tells prior codes from encoder codes; --prior gaussian | gmm (ten Gaussians,
                  genae.models.priors). --label-prior: D sees [z, one-hot over 11 classes] (ten digits
                  and 'unlabeled'); real codes of digit k come from component k, those of unlabeled
                  images from the whole mixture, so each component ends up holding one digit.
                  With --n-labels, --labeled-batch labeled images join every batch (default: as
                  many as the batch), or the unlabeled majority fixes the digit→component map.
  supervised      the decoder gets [z, one-hot(y)]: the label needs no room in z, so z holds style.
  semisupervised  the encoder gives z and q(y|x) = softmax(logits); D_z matches z to the prior,
                  D_y matches q(y|x) to one-hot draws of Cat(1/10); the decoder gets [z, q(y|x)];
                  a classification phase trains q(y|x) on the labeled subset.

Phases on every batch, in this order, each with its own Adam (β₁ = --adam-beta1; with
--encoder-optimizer shared, reconstruction, generator and classification step one Adam):
  reconstruction  encoder + decoder:  w_ae · ‖tanh(decoder) − x‖² summed over pixels of x ∈ [-1, 1]
                  (= −log p(x|z) + const. for p(x|z) = N(decoder mean, σ² = 1/8) on [0, 1] pixels)
  discriminator   D (and D_y):  w_dis · [BCE(D(z_prior), 1) + BCE(D(z_encoder), 0)]  (+ w_ydis · same for y)
  generator       encoder:  w_gen · BCE(D(z_encoder), 1)  (+ w_ygen · BCE(D_y(q(y|x)), 1))
  classification  encoder (semisupervised only):  w_cls · CE(q(y|x), y) on the labeled images
                  (on every --classify-every-th step only)
Each BCE is a mean over the batch. When every phase has its own Adam, whose step ignores a loss's
scale, the weights act only as ratios within a phase (w_dis : w_ydis, w_gen : w_ygen).
Semi-supervised accuracy is that of the epoch with the lowest validation error (the engine keeps
those weights). What the options did in practice: docs/aae.md.

    genae train aae --prior gmm --label-prior --n-labels 10000 --out runs/aae-gmm-labels
    genae train aae --mode semisupervised --n-labels 100 --dim-z 10 --out runs/aae-ss-100
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal

from genae.data.mnist import MNIST
from genae.data.subsets import LabeledSubset, balanced_subset, hide_labels
from genae.data.transforms import to_signed
from genae.errors import UserError
from genae.models.base import (N_CLASSES, Batch, Capabilities, Model, Phase, adam, labeled_positions, one_hot,
    sample_labels)
from genae.models.config import MAX_BATCH, TrainConfig, check_config, require_fraction, require_positive
from genae.models.priors import GaussianMixturePrior, make_prior
from genae.nets import build_networks, diagonal_gaussian, mlp

PIXEL_STD = 1 / math.sqrt(8)  # p(x|z)'s std on [0, 1] pixels that makes −log p the [-1, 1] squared error


@dataclass
class AAEConfig(TrainConfig):
    epochs: int = 100
    """Maximum number of passes over the training split (the AAE source's 100)."""
    lr: float = 2e-4
    """Adam learning rate of every phase (the AAE source's 2e-4)."""
    mode: Literal["unsupervised", "supervised", "semisupervised"] = "unsupervised"
    """unsupervised; supervised (the decoder also gets y, so z holds the style); semisupervised (the
    encoder also predicts y)."""
    prior: Literal["gaussian", "gmm"] = "gaussian"
    """Prior on z: N(0, I), or ten rotated Gaussians on a circle (genae.models.priors)."""
    label_prior: bool = False
    """--prior gmm: the discriminator also sees the label (11th class: unlabeled); digit k's prior
    codes come from component k."""
    n_labels: Optional[int] = None
    """Labeled training images (balanced; the rest unlabeled) for --label-prior and semisupervised;
    None: all."""
    labeled_batch: Optional[int] = None
    """Labeled images joining every batch when labels are hidden; None: 32 (semisupervised, the
    source's), else --batch-size."""
    classify_every: int = 1
    """Semisupervised: the classification phase runs on every K-th step only (the source: every 10th
    with 1000 labels)."""
    dim_z: int = 2
    """Code dimensions (2 draws the code space and manifold as they are)."""
    n_hidden: int = 1000
    """Units per hidden layer of encoder, decoder and discriminators (the source's 1000)."""
    n_layers: int = 2
    """Hidden layers of encoder, decoder and discriminators (the source's 2)."""
    input_noise: float = 0.0
    """Std of Gaussian noise added to the encoder's [-1, 1] input in training (the source's --noise: 0.6)."""
    dropout: float = 0.0
    """Drop probability after every hidden layer of encoder and decoder (the source's keep prob. 1.0)."""
    discriminator_noise: float = 0.0
    """Std of Gaussian noise on what the discriminators judge, in training (musyoku's AAE: 0.3); 0:
    none."""
    adam_beta1: float = 0.5
    """Adam β₁ of every phase (the source's 0.5)."""
    deterministic: bool = False
    """z = μ(x), a point mass (Makhzani et al.'s reported results); otherwise z ~ N(μ(x), σ²(x)) by
    reparametrisation (the source's)."""
    encoder_optimizer: Literal["per-phase", "shared"] = "per-phase"
    """per-phase: each phase has its own Adam for the encoder (the source's); shared: one for all
    (musyoku's)."""
    w_ae: float = 1.0
    """Weight of the reconstruction loss (with per-phase Adams only ratios within a phase act)."""
    w_gen: float = 6.0
    """Weight of the z generator loss (encoder fooling D)."""
    w_dis: float = 6.0
    """Weight of the z discriminator loss."""
    w_cls: float = 1.0
    """Weight of the classification loss (semisupervised)."""
    w_ygen: float = 6.0
    """Weight of the y generator loss (semisupervised)."""
    w_ydis: float = 6.0
    """Weight of the y discriminator loss (semisupervised)."""
    gmm_radius: float = 4.0
    """--prior gmm: distance of each component's mean from the origin."""
    gmm_radial_std: float = 1.0
    """--prior gmm: each component's std along its radius."""
    gmm_tangential_std: float = 0.25
    """--prior gmm: each component's std across its radius (and along every coordinate past the 2nd)."""


def check_aae_config(c: AAEConfig) -> None:
    """Reject values and combinations that would fail or silently do something else, naming the options."""
    if c.label_prior and (c.mode != "unsupervised" or c.prior != "gmm"):
        raise UserError(f"--label-prior needs --mode unsupervised and --prior gmm (got --mode {c.mode}, "
                         f"--prior {c.prior}): each digit is tied to one mixture component")
    if c.n_labels is not None and not (c.label_prior or c.mode == "semisupervised"):
        raise UserError(f"--n-labels {c.n_labels} has no effect with --mode {c.mode}"
                         f"{'' if c.mode != 'unsupervised' else ' without --label-prior'}")
    require_positive(dim_z=c.dim_z, n_hidden=c.n_hidden, n_layers=c.n_layers, classify_every=c.classify_every,
                     labeled_batch=1 if c.labeled_batch is None else c.labeled_batch)
    for option, value in (("input-noise", c.input_noise), ("discriminator-noise", c.discriminator_noise),
                          ("w-ae", c.w_ae), ("w-gen", c.w_gen), ("w-dis", c.w_dis), ("w-cls", c.w_cls),
                          ("w-ygen", c.w_ygen), ("w-ydis", c.w_ydis)):
        if not (value >= 0 and math.isfinite(value)):
            raise UserError(f"--{option} {value}: must be finite and >= 0")
    check_config(c)
    if c.labeled_batch is not None and c.labeled_batch > MAX_BATCH:
        raise UserError(f"--labeled-batch {c.labeled_batch}: at most {MAX_BATCH:,}")
    require_fraction("dropout", c.dropout)
    require_fraction("adam-beta1", c.adam_beta1)
    if c.classify_every != 1 and c.mode != "semisupervised":
        raise UserError(f"--classify-every {c.classify_every} has no effect with --mode {c.mode}")


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module | None):
    """Build the graph without weight gradients for these modules (the generator phase needs D's
    input gradient only); gradients still flow through them to their input."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class AAE(Model):
    """Adversarial autoencoder in one of three modes; see the module docstring."""

    name = "aae"

    def __init__(self, config: AAEConfig):
        super().__init__(config)
        check_aae_config(config)
        self.semi = config.mode == "semisupervised"
        decoder_cond = 0 if config.mode == "unsupervised" else N_CLASSES
        self.encoder, self.decoder = build_networks(
            "mlp", dim_z=config.dim_z, n_hidden=config.n_hidden, n_layers=config.n_layers, cond_dim=decoder_cond,
            encoder_cond=False, enc_out=self._code_outputs + (N_CLASSES if self.semi else 0), dropout=config.dropout)
        hidden = [config.n_hidden] * config.n_layers
        self.discriminator = mlp([config.dim_z + (N_CLASSES + 1 if config.label_prior else 0), *hidden, 1])
        self.y_discriminator = mlp([N_CLASSES, *hidden, 1]) if self.semi else None
        self.prior = make_prior(config.prior, config.dim_z, radius=config.gmm_radius,
                                radial_std=config.gmm_radial_std, tangential_std=config.gmm_tangential_std)
        self.labeled: LabeledSubset | None = None   # set in prepare_data (with --n-labels)
        self.labeled_batch = config.labeled_batch or (32 if self.semi else config.batch_size)

    @property
    def conditional(self) -> bool:
        """Whether a label chooses what `sample` draws (decoder input or mixture component)."""
        return self.config.mode != "unsupervised" or self.config.label_prior

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(conditional=self.conditional, encodes=True, decodes=True,
                            decodes_label=bool(self.decoder.cond_dim), samples=True, classifies=self.semi)

    @property
    def latent_dim(self) -> int:
        return self.config.dim_z

    def describe(self) -> dict:
        """The mixture prior's shape (a page draws from component k for label k)."""
        if self.config.prior != "gmm":
            return {"prior": {"kind": "gaussian"}}
        c = self.config
        return {"prior": {"kind": "gmm", "radius": c.gmm_radius, "radial_std": c.gmm_radial_std,
                          "tangential_std": c.gmm_tangential_std, "label_chooses_component": c.label_prior}}

    # ------------------------------------------------------------ data
    def prepare_data(self, data: MNIST) -> MNIST:
        """With --n-labels, keep a balanced subset's labels and hide the rest (y = -1)."""
        if self.config.n_labels is None:
            return data
        keep = balanced_subset(data.train.y, self.config.n_labels, seed=self.config.seed)
        self.labeled = LabeledSubset(data.train, keep, draw=self.labeled_batch)
        return MNIST(hide_labels(data.train, keep), data.valid, data.test, data.source)

    def prepare(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
        """Training with hidden labels (semisupervised, --label-prior): a labeled draw joins every batch."""
        if self.training and self.labeled is not None:
            x, y = self.labeled.join(x, y, True)
        return super().prepare(x, y, generator)

    def plan_step(self, idx: torch.Tensor) -> tuple:
        """Semisupervised with --n-labels: (True: a draw joins every step, how many of the step's
        images are labeled), which the classification phase needs; otherwise nothing."""
        return self.labeled.plan(idx) if self.semi and self.labeled is not None else ()

    def training_batch(self, x: torch.Tensor, y: torch.Tensor, plan: tuple) -> Batch:
        if not plan:
            batch = self.prepare(x, y)
            if self.semi:   # without --n-labels every image is labeled
                batch.n_labeled = len(batch)
            return batch
        drawn, n_labeled = plan
        batch = super().prepare(*self.labeled.join(x, y, drawn))
        batch.n_labeled = n_labeled
        return batch

    # ------------------------------------------------------------ the networks
    @property
    def _code_outputs(self) -> int:
        """Encoder outputs for z: μ alone (--deterministic) or μ and log σ²."""
        return self.config.dim_z * (1 if self.config.deterministic else 2)

    def posterior(self, x: torch.Tensor):
        """(q(z|x), logits of q(y|x) or None) for images x in [0, 1]; training adds --input-noise.
        With --deterministic q(z|x) is the point mass at μ(x), a Normal of std 0 (its samples are μ)."""
        h = to_signed(x)
        if self.training and self.config.input_noise > 0:
            h = h + self.config.input_noise * torch.randn_like(h)
        out = self.encoder(h)
        code, rest = out[:, :self._code_outputs], out[:, self._code_outputs:]
        if self.config.deterministic:
            mu = code.float()
            q = Independent(Normal(mu, torch.zeros_like(mu), validate_args=False), 1, validate_args=False)
        else:
            q = diagonal_gaussian(code, "exp")
        return q, (rest if self.semi else None)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """q(z|x) (the encoder never sees the label)."""
        return self.posterior(x)[0]

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        if not self.semi:
            raise UserError(f"an AAE in --mode {self.config.mode} has no classifier (use semisupervised)")
        return self.posterior(x)[1]

    def _signed_mean(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        return torch.tanh(self.decoder(z, condition if self.decoder.cond_dim else None))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None):
        """p(x|z[,y]) = N(mean, 1/8) on [0, 1] pixels; y (labels or B×10 probabilities) is used by the
        supervised and semisupervised decoders."""
        if self.decoder.cond_dim and y is None:
            raise ValueError(f"the {self.config.mode} AAE's decoder needs labels y")
        condition = None if not self.decoder.cond_dim else (one_hot(y) if y.dim() == 1 else y)
        mean = (self._signed_mean(z, condition) + 1) / 2
        return Independent(Normal(mean, PIXEL_STD, validate_args=False), 3, validate_args=False)

    def _noisy(self, v: torch.Tensor) -> torch.Tensor:
        """A discriminator's input with --discriminator-noise added (training only)."""
        if self.training and self.config.discriminator_noise > 0:
            return v + self.config.discriminator_noise * torch.randn_like(v)
        return v

    def _discriminate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self._noisy(z)
        if self.config.label_prior:
            z = torch.cat([z, F.one_hot(torch.where(y >= 0, y, N_CLASSES), N_CLASSES + 1).to(z.dtype)], 1)
        return self.discriminator(z).squeeze(1)

    def _prior_codes(self, y: torch.Tensor) -> torch.Tensor:
        labels = y if self.config.label_prior else torch.full_like(y, -1)
        return self.prior.sample(labels)

    # ------------------------------------------------------------ the phases
    def _condition(self, batch: Batch, logits: torch.Tensor | None, *, hard: bool = False) -> torch.Tensor | None:
        """The decoder's label input: the true one-hot (supervised), q(y|x) — or, with hard=True
        (evaluation), its argmax as one-hot — (semisupervised), none (unsupervised)."""
        if self.config.mode == "supervised":
            return one_hot(batch.y)
        if not self.semi:
            return None
        return one_hot(logits.argmax(1)) if hard else logits.softmax(1)

    def _rec_sse(self, z: torch.Tensor, condition: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        """Per image: squared error summed over pixels, both in [-1, 1]."""
        return (self._signed_mean(z, condition) - to_signed(target)).square().flatten(1).sum(1)

    def reconstruction_loss(self, batch: Batch):
        q, logits = self.posterior(batch.x)
        rec = self._rec_sse(q.rsample(), self._condition(batch, logits), batch.target).mean()
        return self.config.w_ae * rec, {"rec_sse": rec.detach()}

    def discriminator_loss(self, batch: Batch):
        with torch.no_grad():
            q, logits = self.posterior(batch.x)
            fake = q.sample()
        real = self._prior_codes(batch.y)
        d_real, d_fake = self._discriminate(real, batch.y), self._discriminate(fake, batch.y)
        loss_z = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        parts = {"d_loss": loss_z.detach(), "d_accuracy": ((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2}
        loss = self.config.w_dis * loss_z
        if self.semi:
            y_real = one_hot(torch.randint(N_CLASSES, (len(batch),), device=batch.x.device))
            e_real = self.y_discriminator(self._noisy(y_real)).squeeze(1)
            e_fake = self.y_discriminator(self._noisy(logits.softmax(1))).squeeze(1)
            loss_y = F.binary_cross_entropy_with_logits(e_real, torch.ones_like(e_real)) + \
                F.binary_cross_entropy_with_logits(e_fake, torch.zeros_like(e_fake))
            loss = loss + self.config.w_ydis * loss_y
            parts.update(dy_loss=loss_y.detach(),
                         dy_accuracy=((e_real > 0).float().mean() + (e_fake < 0).float().mean()) / 2)
        return loss, parts

    def generator_loss(self, batch: Batch):
        q, logits = self.posterior(batch.x)
        with frozen(self.discriminator, self.y_discriminator):
            d_fake = self._discriminate(q.rsample(), batch.y)
            gen_z = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            loss, parts = self.config.w_gen * gen_z, {"g_loss": gen_z.detach()}
            if self.semi:
                e_fake = self.y_discriminator(self._noisy(logits.softmax(1))).squeeze(1)
                gen_y = F.binary_cross_entropy_with_logits(e_fake, torch.ones_like(e_fake))
                loss = loss + self.config.w_ygen * gen_y
                parts["gy_loss"] = gen_y.detach()
        return loss, parts

    def classification_loss(self, batch: Batch):
        lab, _ = labeled_positions(batch)
        if not len(lab):
            raise ValueError("the classification phase got a batch without labeled images")
        ce = F.cross_entropy(self.posterior(batch.x[lab])[1], batch.y[lab])
        return self.config.w_cls * ce, {"cross_entropy": ce.detach()}

    @property
    def graph_safe(self) -> bool:
        return True   # the classification phase knows from the step's plan how many images are labeled

    def phases(self) -> list[Phase]:
        betas = (self.config.adam_beta1, 0.999)
        shared = self.config.encoder_optimizer == "shared"

        def step(params):
            return adam(params, lr=self.config.lr, betas=betas)

        autoencoder = step([*self.encoder.parameters(), *self.decoder.parameters()])

        def encoder():
            # --encoder-optimizer shared: the generator and classification phases step the autoencoder's
            # Adam (the engine zeroes its gradients before each phase; the decoder's, None there, are skipped)
            return autoencoder if shared else step(self.encoder.parameters())

        critics = list(self.discriminator.parameters()) + (
            list(self.y_discriminator.parameters()) if self.semi else [])
        phases = [Phase("reconstruction", autoencoder, self.reconstruction_loss),
                  Phase("discriminator", step(critics), self.discriminator_loss),
                  Phase("generator", encoder(), self.generator_loss)]
        if self.semi:
            phases.append(Phase("classification", encoder(), self.classification_loss,
                                every=self.config.classify_every))
        return phases

    # ------------------------------------------------------------ evaluation
    def validation_metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        """'loss': the classification error (semisupervised) or the reconstruction error; also how
        well D tells the codes (means) from prior draws."""
        q, logits = self.posterior(batch.x)
        rec = self._rec_sse(q.mean, self._condition(batch, logits, hard=True), batch.target).mean()
        d_real, d_fake = self._discriminate(self._prior_codes(batch.y), batch.y), self._discriminate(q.mean, batch.y)
        out = {"rec_sse": rec, "d_accuracy": ((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2}
        if self.semi:
            error = (logits.argmax(1) != batch.y).float().mean()
            return {**out, "loss": error, "error": error}
        return {**out, "loss": rec}

    @torch.no_grad()
    def test_metrics(self, batch: Batch) -> dict:
        sse, errors, matches = [], [], []
        components = self.prior.components(self.device) if self.config.label_prior else None
        for i in range(0, len(batch), 1000):
            part = Batch(batch.x[i:i + 1000], batch.y[i:i + 1000], batch.target[i:i + 1000])
            q, logits = self.posterior(part.x)
            sse.append(self._rec_sse(q.mean, self._condition(part, logits, hard=True), part.target))
            if self.semi:
                errors.append((logits.argmax(1) != part.y).float())
            if components is not None:
                matches.append((components.log_prob(q.mean[:, None]).argmax(1) == part.y).float())
        result = {"rec_sse": torch.cat(sse).mean().item(),
                  "note": "rec_sse: squared error of the reconstruction from the code's mean, summed over "
                          "pixels scaled to [-1, 1], mean over images" +
                          ("; error: argmax q(y|x) at the best validation epoch" if self.semi else "") +
                          ("; component_match: share of test images whose code's mean is most likely under "
                           "the mixture component of their own digit" if components is not None else "")}
        if self.semi:
            error = torch.cat(errors).mean().item()
            result.update(error=error, accuracy=1 - error, n_labels=self.config.n_labels or "all")
        if components is not None:
            result.update(component_match=torch.cat(matches).mean().item(), n_labels=self.config.n_labels or "all")
        return result

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None, *, std: float = 1.0) -> torch.Tensor:
        """n images (pixel means in [0, 1]). Unsupervised: z from the prior (with --label-prior, from
        component y); otherwise z ~ N(0, std²·I) decoded with label y. y defaults to 0..9 in turn."""
        if std < 0:
            raise UserError(f"std {std}: the scale of z must be >= 0")
        y = sample_labels(n, y, self.device)
        if self.config.mode == "unsupervised":
            if isinstance(self.prior, GaussianMixturePrior) and std != 1.0:
                raise UserError("std scales the Gaussian prior only; the mixture prior is sampled as it is")
            z = self._prior_codes(y if self.config.label_prior else torch.full_like(y, -1)) * std
        else:
            z = torch.randn(n, self.config.dim_z, device=self.device) * std
        return self.decode(z, y).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the code's mean (semisupervised: with the predicted label)."""
        q, logits = self.posterior(x)
        if self.semi:
            y = logits.argmax(1)
        return self.decode(q.mean, y if self.decoder.cond_dim else None).mean
