"""Kingma et al. 2014's semi-supervised models M2 and M1+M2 (M1, a VAE whose encoder means feed a
classifier, is the plain `vae` model plus genae.evaluate.classification).

M2 generative model:  y ~ Cat(1/10),  z ~ N(0, I),  x | y, z ~ Bernoulli(decoder(z, y))
Guide:                q(y | x) = Cat(softmax(classifier(x))),  q(z | x, y) = N(μ(x, y), σ²(x, y))

Per labeled image (x, y), the negative ELBO
    L(x, y) = −E_q(z|x,y)[log p(x | y, z)] + β·KL(q(z | x, y) ‖ p(z)) − log p(y)    (β = 1: the paper's);
per unlabeled image, y summed out exactly over the ten labels,
    U(x) = Σ_y q(y | x)·L(x, y) − H(q(y | x)).
The objective over the training split, N_l labeled and N_u unlabeled images, is the paper's
    J^α = Σ_labeled [L(x, y) + α · (−log q(y | x))] + Σ_unlabeled U(x),   α = 0.1·N / N_l by default
(the paper writes α = 0.1·N on the mean classification loss; per labeled image that is 0.1·N/N_l).
A step sees --batch-size images of the training split (labels hidden except for the labeled
subset) and, with probability 1/K (K = --labeled-every), --labeled-batch images drawn from the
labeled subset; its loss, in nats per image, is
    mean over its unlabeled images of U + w_L · mean over its labeled images of L
      + w_C · α · mean over its labeled images of (−log q(y | x)),
with (w_L, w_C) set by --labeled-weight:
    batch        (1, 1): the labeled draw weighs as much as the unlabeled batch (seen every step, the
                 few labeled images count far more than in J^α);
    share        (K·N_l/N_u, K·N_l/N_u): an unbiased estimate of J^α / N_u (Kingma et al.'s code);
    bound-share  (K·N_l/N_u, 1): the labeled bound at its share of the data, the classifier's signal as
                 in 'batch' — the generative model no longer memorises the labeled images.
β > 1 makes keeping the digit's identity in z cost more than keeping it in y (at most log 10 nats),
so the decoder comes to depend on y and the unlabeled bound teaches q(y|x); `genae eval` gives
`generative_error`, the error of argmin_y L(x, y): how well the decoder itself tells the digits apart.

M1+M2 (--m1-run DIR): every image is replaced by z1 ~ q(z1 | x) of the trained, frozen VAE in DIR
(resampled each batch; its mean at evaluation), and p(z1 | y, z2) is a diagonal Gaussian; M2's
bound is then over z1, not pixels. As in Kingma et al.'s code, only M1's active dimensions are
features (--m1-min-std); the others (posterior collapse: q(z1|x) ≈ N(0, 1)) reach the networks as
0 and p(z1 | y, z2) models them as N(0, 1), M1's prior.

Classification is argmax_y q(y | x); the engine keeps the weights of the epoch with the lowest
validation error, so the test error reported is the one at the best validation epoch. What each
option did in practice: docs/semisupervised.md.

    genae train m2 --n-labels 100 --epochs 100 --out runs/m2-100
    genae train vae --dim-z 50 --epochs 100 --out runs/m1 && genae train m2 --m1-run runs/m1 --out runs/m1m2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch.distributions import kl_divergence

from genae.data.mnist import MNIST
from genae.data.subsets import LabeledSubset, balanced_subset, hide_labels
from genae.errors import UserError
from genae.models.base import (N_CLASSES, Batch, Capabilities, LoadRun, Model, Phase, adam, labeled_positions,
    one_hot, sample_labels)
from genae.models.config import (
    MAX_BATCH,
    TrainConfig,
    check_config,
    check_kl_weight,
    require_fraction,
    require_positive,
)
from genae.nets import (
    IMAGE_SHAPE,
    IMAGE_SIZE,
    Decoder,
    Encoder,
    bernoulli_image,
    diagonal_gaussian,
    mlp,
    standard_normal,
)

LOG_CLASSES = math.log(N_CLASSES)  # −log p(y) for the uniform prior


@dataclass
class M2Config(TrainConfig):
    n_labels: int = 100
    """Labeled training images, balanced across the classes, drawn from the 50k training split by --seed."""
    labeled_batch: int = 100
    """Labeled images drawn (with replacement) from the labeled subset when a step takes a labeled draw."""
    labeled_every: int = 1
    """A step takes a labeled draw with probability 1/K (1: every step)."""
    adam_beta1: float = 0.9
    """Adam β₁ (the Pyro example uses 0.95)."""
    activation: Literal["relu", "softplus"] = "relu"
    """Hidden-unit nonlinearity of every network (the paper and the Pyro example use softplus)."""
    alpha: Optional[float] = None
    """Weight α of the classification loss per labeled image (default 0.1·N/N_labeled, the paper's)."""
    dim_z: int = 50
    """Latent dimensions of z (the paper's 50)."""
    beta: float = 1.0
    """Weight β of KL(q(z|x,y) ‖ p(z)) in training, 0 … 10⁶ (1: the paper's bound; validation and test
    use 1)."""
    n_hidden: int = 500
    """Units per hidden layer of the classifier, encoder and decoder."""
    n_layers: int = 1
    """Hidden layers in each network (the paper's M2: one of 500 units)."""
    sigma: Literal["exp", "softplus"] = "exp"
    """Encoder std: 'exp' σ = exp(½·logvar); 'softplus' σ = softplus(ρ)."""
    labeled_weight: Literal["batch", "share", "bound-share"] = "batch"
    """Weight of the labeled terms per step: batch, share (the paper's) or bound-share (see
    genae.models.semisupervised)."""
    m1_run: Optional[str] = None
    """A trained `vae` run: M2 is trained on its latent space (M1+M2). None: on pixels (M2)."""
    m1_min_std: float = 0.1
    """M1+M2: M1's code dimensions whose mean varies less (std over 1000 images) are dropped
    (Kingma et al.'s 0.1; 0 keeps all)."""


def check_m2_config(config: M2Config) -> None:
    """Reject values no M2 can use, naming the option."""
    require_positive(labeled_batch=config.labeled_batch, labeled_every=config.labeled_every, dim_z=config.dim_z,
                     n_hidden=config.n_hidden, n_layers=config.n_layers, n_labels=config.n_labels)
    check_config(config)
    check_kl_weight(config.beta)
    if config.labeled_batch > MAX_BATCH:
        raise UserError(f"--labeled-batch {config.labeled_batch}: at most {MAX_BATCH:,}")
    if config.alpha is not None and not (config.alpha >= 0 and math.isfinite(config.alpha)):
        raise UserError(f"--alpha {config.alpha}: must be finite and >= 0")
    require_fraction("adam-beta1", config.adam_beta1)
    if not config.m1_min_std >= 0:
        raise UserError(f"--m1-min-std {config.m1_min_std}: must be >= 0")


class M2(Model):
    """M2, or M1+M2 with --m1-run; see the module docstring.

    The public methods (encode, decode, reconstruct, sample, classify_logits) take and give images;
    inside, the networks see `features`: the pixels, or M1's codes for M1+M2."""

    name = "m2"

    def __init__(self, config: M2Config, load_run: LoadRun | None = None):
        super().__init__(config)
        check_m2_config(config)
        self.m1 = _frozen_m1(config.m1_run, load_run) if config.m1_run else None
        size = self.m1.config.dim_z if self.m1 is not None else IMAGE_SIZE
        hidden = [config.n_hidden] * config.n_layers
        act = {"relu": torch.nn.ReLU, "softplus": torch.nn.Softplus}[config.activation]
        self.classifier = mlp([size, *hidden, N_CLASSES], act)
        self.encoder = Encoder(mlp([size + N_CLASSES, *hidden, 2 * config.dim_z], act), N_CLASSES)
        out = (2 * size,) if self.m1 is not None else IMAGE_SHAPE
        out_size = 2 * size if self.m1 is not None else IMAGE_SIZE
        self.decoder = Decoder(mlp([config.dim_z + N_CLASSES, *hidden, out_size], act), N_CLASSES, out_shape=out)
        if self.m1 is not None:   # 1 for M1's active dimensions, set in prepare_data
            self.register_buffer("m1_active", torch.ones(size))
        self.labeled: LabeledSubset | None = None   # set in prepare_data
        self.labeled_weight = 1.0   # w_L of the module docstring; prepare_data sets it
        self.classification_weight = 1.0   # w_C; 'share' sets it in prepare_data

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(conditional=True, encodes=True, encodes_label=True, decodes=True, decodes_label=True,
                            samples=True, classifies=True)

    @property
    def latent_dim(self) -> int:
        return self.config.dim_z

    # ------------------------------------------------------------ data
    def prepare_data(self, data: MNIST) -> MNIST:
        """Keep the labels of a balanced subset of the training split, hide the rest (y = -1)."""
        keep = balanced_subset(data.train.y, self.config.n_labels, seed=self.config.seed)
        self.labeled = LabeledSubset(data.train, keep, draw=self.config.labeled_batch,
                                     every=self.config.labeled_every)
        if self.m1 is not None and self.config.m1_min_std > 0:
            with torch.no_grad():
                first = self.m1.prepare(data.train.x[:1000], data.train.y[:1000]).x
                spread = self.m1.encode(first).mean.std(0, correction=0)
            self.m1_active.copy_((spread > self.config.m1_min_std).float())
        if self.config.labeled_weight != "batch":   # the draw joins 1 step in K: weigh it K times
            self.labeled_weight = self.config.labeled_every * len(keep) / (len(data.train.y) - len(keep))
            if self.config.labeled_weight == "share":
                self.classification_weight = self.labeled_weight
        return MNIST(hide_labels(data.train, keep), data.valid, data.test, data.source)

    def plan_step(self, idx: torch.Tensor) -> tuple:
        """(Whether the step takes a labeled draw, how many of its images are then labeled)."""
        return self.labeled.plan(idx) if self.labeled is not None else ()

    def training_batch(self, x: torch.Tensor, y: torch.Tensor, plan: tuple) -> Batch:
        if not plan:
            return self.prepare(x, y)
        drawn, n_labeled = plan
        batch = self._prepare_joined(*self.labeled.join(x, y, drawn))
        batch.n_labeled = n_labeled
        return batch

    def prepare(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
        """In training, a labeled draw joins the batch (with probability 1/--labeled-every); with M1,
        images become z1 ~ q(z1 | x) (its mean outside training)."""
        if self.training and self.labeled is not None:
            x, y = self.labeled.join(x, y, self.labeled.draws())
        return self._prepare_joined(x, y, generator)

    def _prepare_joined(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
        if self.m1 is None:
            return super().prepare(x, y, generator)
        with torch.no_grad():
            q = self.m1.encode(self.m1.prepare(x, y, generator).x)
            z1 = q.rsample() if self.training else q.mean
        return Batch(x=z1 * self.m1_active, y=y, target=z1)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the networks see of images x: the pixels (M2), or M1's mean codes in its active
        dimensions (M1+M2)."""
        if self.m1 is None:
            return x
        return self.m1.encode(x).mean * self.m1_active

    # ------------------------------------------------------------ the networks, on features
    def _likelihood(self, out: torch.Tensor):
        """p(x | y, z): Bernoulli pixels (M2) or a diagonal Gaussian over z1 (M1+M2), N(0, 1) in M1's
        inactive dimensions (mean and log-variance 0)."""
        if self.m1 is None:
            return bernoulli_image(out)
        return diagonal_gaussian(out * self.m1_active.repeat(2), "exp")

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | x), in float32 even under --precision bf16 (autocast off here: with bf16
        products in the classifier M2 learnt far slower, docs/semisupervised.md). It is one pass per
        image against ten for the decoder, so float32 here costs bf16 little of its speed."""
        with torch.autocast(features.device.type, enabled=False):
            return self.classifier(features.float().flatten(1))

    def _encode(self, features: torch.Tensor, y: torch.Tensor | None = None):
        """q(z | x, y); without y, the classifier's guess is used."""
        if y is None:
            y = self._logits(features).argmax(1)
        return diagonal_gaussian(self.encoder(features, one_hot(y)), self.config.sigma)

    def _bound(self, q, z: torch.Tensor, labels: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
        """−log p(target | y, z) + beta·KL(q ‖ N(0, I)) − log p(y), for one-hot labels."""
        rec = -self._likelihood(self.decoder(z, labels)).log_prob(target)
        return rec + beta * kl_divergence(q, standard_normal(q.mean.shape, q.mean.device)) + LOG_CLASSES

    def labeled_bound(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """L(x, y) per image of features x, one z sample (the KL weighted by beta)."""
        q = self._encode(x, y)
        return self._bound(q, q.rsample(), one_hot(y), target, beta)

    def bounds_each_label(self, x: torch.Tensor, target: torch.Tensor, beta: float = 1.0,
                          sample: bool = True) -> torch.Tensor:
        """L(x, y) for all ten y at once, 10×B (z sampled, or at the mean of q(z|x,y))."""
        labels = torch.eye(N_CLASSES, device=x.device)
        q = diagonal_gaussian(self.encoder.forward_each(x, labels), self.config.sigma)   # batch 10×B
        return self._bound(q, q.rsample() if sample else q.mean, labels[:, None, :], target, beta)

    def unlabeled_bound(self, x: torch.Tensor, target: torch.Tensor,
                        logits: torch.Tensor | None = None, beta: float = 1.0) -> torch.Tensor:
        """U(x) per image: L(x, y) for all ten y at once (10×B), weighted by q(y | x), minus H(q)."""
        bound = self.bounds_each_label(x, target, beta)
        log_q = F.log_softmax(self._logits(x) if logits is None else logits, dim=1).T   # 10×B
        return (log_q.exp() * (bound + log_q)).sum(0)

    @property
    def alpha(self) -> float:
        if self.config.alpha is not None:
            return self.config.alpha
        return 0.1 * 50_000 / self.config.n_labels

    # ------------------------------------------------------------ training
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        zero = batch.x.new_zeros(())
        lab, unl = labeled_positions(batch)
        beta = self.config.beta
        bound_l = self.labeled_bound(batch.x[lab], batch.y[lab], batch.target[lab], beta).mean() if len(lab) else zero
        ce = F.cross_entropy(self._logits(batch.x[lab]), batch.y[lab]) if len(lab) else zero
        bound_u = self.unlabeled_bound(batch.x[unl], batch.target[unl], beta=beta).mean() if len(unl) else zero
        loss = bound_u + self.labeled_weight * bound_l + self.classification_weight * self.alpha * ce
        return loss, {"loss": loss.detach(), "labeled_bound": bound_l.detach(), "unlabeled_bound": bound_u.detach(),
                      "classification": ce.detach()}

    @property
    def graph_safe(self) -> bool:
        return True   # the planned step knows how many of its images are labeled

    def phases(self) -> list[Phase]:
        params = [p for p in self.parameters() if p.requires_grad]
        return [Phase("m2", adam(params, lr=self.config.lr, betas=(self.config.adam_beta1, 0.999)), self.loss)]

    # ------------------------------------------------------------ evaluation
    def validation_metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        """'loss' is the classification error, so the best epoch is the best validation error."""
        logits = self._logits(batch.x)
        error = (logits.argmax(1) != batch.y).float().mean()
        return {"loss": error, "error": error, "labeled_bound": self.labeled_bound(batch.x, batch.y, batch.target).mean()}

    @torch.no_grad()
    def test_metrics(self, batch: Batch) -> dict:
        errors, bounds, generative = [], [], []
        for i in range(0, len(batch), 1000):
            x, y, t = batch.x[i:i + 1000], batch.y[i:i + 1000], batch.target[i:i + 1000]
            errors.append((self._logits(x).argmax(1) != y).float())
            bounds.append(self.labeled_bound(x, y, t))
            generative.append((self.bounds_each_label(x, t, sample=False).argmin(0) != y).float())
        error = torch.cat(errors).mean().item()
        return {"error": error, "accuracy": 1 - error, "n_labels": self.config.n_labels,
                "labeled_elbo": -torch.cat(bounds).mean().item(),
                "generative_error": torch.cat(generative).mean().item(),
                "note": "classification error of argmax q(y|x) at the best validation epoch; "
                        "labeled ELBO = −L(x, y) with one z sample" + (" (over M1's z1)" if self.m1 else "") +
                        "; generative_error: argmin_y L(x, y) with z at q's mean, i.e. how well the decoder "
                        "itself tells the digits apart (90%, chance, when it ignores y)"}

    # ------------------------------------------------------------ the interface, on images
    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | x) for images x."""
        return self._logits(self.features(x))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """q(z | x, y) for images x; without y, the classifier's guess is used."""
        return self._encode(self.features(x), y)

    def decode(self, z: torch.Tensor, y: torch.Tensor):
        """p(x | y, z) over pixels; for M1+M2, M1's decoder at the mean of p(z1 | y, z)."""
        out = self._likelihood(self.decoder(z, one_hot(y)))
        return out if self.m1 is None else self.m1.decode(out.mean)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means decoded at the mean of q(z | x, y); without y, with the classifier's guess."""
        features = self.features(x)
        if y is None:
            y = self._logits(features).argmax(1)
        return self.decode(self._encode(features, y).mean, y).mean

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None, *, std: float = 1.0) -> torch.Tensor:
        """Images for labels y (default 0..9 in turn) from z ~ N(0, std²·I)."""
        if std < 0:
            raise UserError(f"std {std}: the scale of z must be >= 0")
        y = sample_labels(n, y, self.device)
        z = torch.randn(n, self.config.dim_z, device=self.device) * std
        return self.decode(z, y).mean


def _frozen_m1(run_dir: str, load_run: LoadRun | None):
    """The M1 VAE of a finished `vae` run, weights loaded, frozen."""
    if load_run is None:
        raise UserError(f"--m1-run {run_dir}: M1+M2 is built with its M1 run loaded (genae.rundir.build_model)")
    m1 = load_run(run_dir)
    if m1.name != "vae":
        raise UserError(f"--m1-run {run_dir}: holds a {m1.name!r} run; M1 is a `vae` run")
    for p in m1.parameters():
        p.requires_grad_(False)
    return m1
