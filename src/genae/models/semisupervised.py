"""Kingma et al. 2014's semi-supervised models M2 and M1+M2 (M1, a VAE whose encoder means feed a
classifier, is the plain `vae` model plus genae.evaluate.classification).

M2 generative model:  y ~ Cat(1/10),  z ~ N(0, I),  x | y, z ~ Bernoulli(decoder(z, y))
Guide:                q(y | x) = Cat(softmax(classifier(x))),  q(z | x, y) = N(μ(x, y), σ²(x, y))

Per labeled image (x, y), the negative ELBO
    L(x, y) = −E_q(z|x,y)[log p(x | y, z)] + KL(q(z | x, y) ‖ p(z)) − log p(y);
per unlabeled image, y summed out exactly over the ten labels,
    U(x) = Σ_y q(y | x)·L(x, y) − H(q(y | x)).
The objective over the training split, N_l labeled and N_u unlabeled images, is the paper's
    J^α = Σ_labeled [L(x, y) + α · (−log q(y | x))] + Σ_unlabeled U(x),   α = 0.1·N / N_l by default
(the paper writes α = 0.1·N on the mean classification loss; per labeled image that is 0.1·N/N_l).
A step sees --batch-size images of the training split (labels hidden except for the labeled
subset) and --labeled-batch images drawn from the labeled subset, in nats per image:
    mean over its unlabeled images of U
      + w · mean over its labeled images of [L + α · (−log q(y | x))]
--labeled-weight batch (default): w = 1, the labeled draw weighs as much as the unlabeled batch, so
    the few labeled images count far more than in J^α (they are seen every step);
--labeled-weight share: w = K·N_l / N_u (K = --labeled-every), the step loss is an unbiased estimate
    of J^α / N_u.
With 100 labels (seed 0, bf16, 10 epochs) 'share' drifted to 56% validation error: the unlabeled
bound sorts q(y|x) by something other than digits when the labels weigh 0.1 per step; 'batch'
stays at 22–24% and reaches 18% by epoch 29 (it memorises the 100 labels by epoch 2).
--labeled-weight bound-share: w = K·N_l / N_u on L (the labeled bound at its share, as in J^α) and 1
on α·(−log q(y|x)) (the classifier's signal as in 'batch'; the same loss as 'share' with α·N_u/(K·N_l)):
    mean over its unlabeled images of U + w · mean over its labeled images of L
      + α · mean over its labeled images of (−log q(y | x)).
With 'batch' the generative model fits the 100 labeled images, seen every step: in M1+M2 (β 1,
lr 3e-4, seed 0) their training bound fell from 72 to 63 nats over 50 epochs while the unlabeled and
validation bounds rose, and the validation error turned up after epoch 27 (best 9.6%, test 11.0%);
with 'bound-share' the validation error fell steadily to 4.6% at epoch 57 (test 5.26%; 3 seeds,
60 epochs: 5.87 ± 0.85%, `genae run semisupervised --n-labels 100 --seeds 0 1 2 --models m1+m2
--labeled-weight bound-share --epochs 60`). M2 on pixels gains less: β 3, lr 1e-3, seed 0,
validation error 9.0% at epoch 19 against 9.8% with 'batch' (`genae train m2 --n-labels 100 --seed 0
--epochs 20 --beta 3 --lr 1e-3 --labeled-weight bound-share`: test 9.72% after 20 epochs).
--labeled-every K: a step takes the labeled draw with probability 1/K only. The Pyro example's
recipe is about --labeled-every 500 --labeled-batch 100 --batch-size 100 --alpha 46 (each label once
per epoch, one large step that Adam turns into a burst of updates) with --activation softplus
--lr 4.2e-4 --adam-beta1 0.95. Here it did no better than the default (100 labels, seed 0, fp32:
best validation error 22.8% at epoch 10 of 19, then 23–27%).

--beta B multiplies KL(q(z|x,y) ‖ p(z)) in both bounds. At B = 1 the bound is nearly indifferent
between keeping the digit's identity in z or in y (either costs about log 10 nats), so the decoder
leans on z, L(x, y) depends little on y, and the unlabeled bound tells q(y|x) little; above 1,
identity in z costs more, the decoder comes to depend on y, and q(y|x) follows. `genae eval` gives
`generative_error`, the error of argmin_y L(x, y). 100 labels, seed 0, lr 1e-3, fp32, 10 epochs,
test set (error of q(y|x) / generative_error / labeled ELBO): B = 1: 19.8% / 20.7% / −111.6;
B = 3: 13.6% / 13.7% / −125.8; B = 10: 15.3% / 15.4% / −160.3; the Pyro-like recipe (B = 1):
24.5% / 33.3% / −127.7. The price of B > 1 is a looser bound (worse reconstructions). 50 epochs,
3 seeds: `genae run semisupervised --n-labels 100 --seeds 0 1 2 --models m2 --beta 3 --lr 1e-3
--epochs 50` gave 6.94 ± 0.99% test error (paper 11.97 ± 1.71; B = 1 in the README: 17.89), and
`--epochs 100` 6.07 ± 0.61% (best validation epochs 97, 74, 98).
On pixels M2's networks matter more than on M1's codes (below). 10-epoch probes (100 labels, seed 0;
`genae train m2 --n-labels 100 --seed 0 --epochs 10 --beta 3 --lr 1e-3` plus the options), validation
error at epoch 10 (epoch 6): no option 12.39% (13.36%; the seed-0 run above, about 28 s per epoch);
--n-layers 2 8.97% (9.85%; about 50 s per epoch), ahead of the 1-layer M2 at epoch 20 (9.61%);
--n-layers 3 stopped at epoch 6 (12.06%; 72 s per epoch); --dim-z 10 10.30%; --n-layers 2 --dim-z 10 12.47% at
epoch 4 against 11.59% for --n-layers 2 alone, stopped; --arch conv (a convolutional classifier and
encoder, the MLP decoder) 11.84%, at 52 s per epoch. Over 3 seeds, 30 epochs with --n-layers 2 gave
6.12 ± 0.88% test error (6.54 / 6.70 / 5.11; best validation epoch 30 for each: still falling), as good as
100 epochs with one layer (`genae run semisupervised --n-labels 100 --seeds 0 1 2 --models m2 --beta 3
--lr 1e-3 --n-layers 2 --epochs 30`, 81 min wall); `--epochs 60` (trained on from those runs, 79 min
wall more) gave 5.44 ± 0.43% (5.70 / 5.67 / 4.94; best validation epochs 54 / 57 / 46). At lr 1e-3 the
validation error moves by 0.3–0.4 points from one epoch to the next on average over epochs 31–60, by up
to 1.5 (last five epochs 5.2–6.0% on average against a best of 4.5–5.3%), and the decoder's own choice
argmin_y L(x, y) errs less than q(y|x) (generative_error 5.25 / 5.11 / 4.59%). Ten more epochs with the rate
decaying to 0 (`--epochs 70 --lr-decay-epochs 10`, trained on from the 60-epoch runs, 28 min wall) gave
5.01 ± 0.23% (5.19 / 5.08 / 4.75; validation 4.78 / 4.68 / 4.43%; generative_error 4.88 / 4.82 / 4.14%).
In bf16 (this classifier in float32) the same networks from scratch stay behind: 45 + 15 epochs of
decay gave 5.52 ± 0.70%, 60 + 20 gave 5.35 ± 0.56% (5.87 / 5.42 / 4.75; `--epochs 80 --lr-decay-epochs 20
--precision bf16`, 93 min wall on a 2-core AVX-512 CPU), against fp32's 5.01 ± 0.23% after 60 + 10.
fp32 with 60 + 20 epochs from scratch (`--epochs 80 --lr-decay-epochs 20`, 137 min wall, same CPU) gave
4.59 ± 1.24% (4.70 / 5.78 / 3.30; validation 4.68 / 5.21 / 3.28%; generative_error 4.75 / 5.42 / 2.97%):
the best mean so far, with the widest spread between seeds.
With more labels 20 epochs suffice (fp32, 3 seeds, `--n-layers 2 --beta 3 --lr 1e-3 --epochs 20`):
4.16 ± 0.47% at 600 labels, 3.88 ± 0.54% at 1000, 3.23 ± 0.24% at 3000 (Kingma et al. 4.94 / 3.60 / 3.92).

M1+M2 (--m1-run DIR): every image is replaced by z1 ~ q(z1 | x) of the trained, frozen VAE in DIR
(resampled each batch; its mean at evaluation), and p(z1 | y, z2) is a diagonal Gaussian; M2's
bound is then over z1, not pixels. As in Kingma et al.'s code, only M1's active dimensions are
features (--m1-min-std): M1's VAE (z 50, 100 epochs) uses 12 of its 50; the others are N(0, 1)
noise that the classifier would see in training and not at test (q's mean, 0). That changed little
in 10-epoch probes (100 labels, seed 0, β = 3, lr 1e-3: best validation error 15.7% with all 50
dimensions, 15.9% with the 12; β = 10: 16.0%). With --labeled-weight batch, β > 1 did not help
M1+M2: at β = 3, lr 1e-3 the validation error was lowest at epoch 5 (15.9%) and rose to 21% by
epoch 50 (test 17.9%), while β = 1, lr 3e-4 with the 12 dimensions reached 9.6% at epoch 27 and
rose after it (test 11.0%, seed 0, 50 epochs; 11.53 ± 0.67 over 3 seeds with all 50 dimensions and
bf16 in the README). The β = 1 rise is the labeled images being memorised (their training bound falls
while the validation bound rises, above); --labeled-weight bound-share removes it: 5.87 ± 0.85% over
3 seeds. The β = 3 rise is not memorisation: with bound-share, β = 3, lr 3e-4 the validation error was
lowest at epoch 14 (14.4%) and rose to 17.3% by epoch 31 (seed 0; `genae train m2 --m1-run M1
--n-labels 100 --seed 0 --epochs 40 --lr 3e-4 --beta 3 --labeled-weight bound-share`, stopped there).
With bound-share and β = 1 the learning rate sets the pace: 120 epochs at lr 3e-4 gave 4.61 ± 0.49%
(best epochs 113–117, still falling), while 20-epoch probes at lr 1e-3 (seed 0, `genae train m2
--m1-run M1 --n-labels 100 --seed 0 --epochs 20 --lr 1e-3 --labeled-weight W`) reached a validation
error of 5.47% with W = bound-share, 5.43% with W = share and 5.12% with bound-share and --alpha 5,
against 9.27% at epoch 20 with lr 3e-4; over 3 seeds, 60 epochs at lr 1e-3 gave 4.51 ± 0.08%
(`genae run semisupervised --n-labels 100 --seeds 0 1 2 --models m1+m2 --labeled-weight bound-share
--epochs 60 --lr 1e-3`; best validation epochs 50–57; with --lr-schedule cosine, seed 0: 4.70%
against 4.46%). 'share' is Kingma et al.'s own weighting (their code puts N_l/M labeled and N_u/M
unlabeled images in each of M minibatches and weighs log q(y|x) by α·N/N_l), so on M1's codes the
classification weight matters little (on pixels, the 10-epoch 'share' probe above drifted).

M1's codes set the limit: an RBF SVM fitted on 40,000 labeled codes of the β = 1 M1 errs on 2.37% of
the test set. An M1 whose KL is weighted below 1 keeps more of the image in more dimensions (19 of 50
at β = 0.25, 12 at 1; `genae run semisupervised --m1-beta B`). 20-epoch probes (100 labels, seed 0;
`genae train vae --dim-z 50 --n-hidden 500 --n-layers 2 --epochs 100 --lr 1e-3 --beta B --seed 0 --out M1`
then `genae train m2 --m1-run M1 --n-labels 100 --seed 0 --epochs 20 --lr 1e-3 --labeled-weight
bound-share`) reached validation errors of 5.47 / 4.98 / 3.71 / 3.68% at B = 1 / 0.5 / 0.25 / 0.1.
Over 3 seeds, 60 epochs at B = 0.25 gave 3.20 ± 0.16% test error (3.28 / 3.31 / 3.02; Kingma et al.
3.33 ± 0.14) against 4.51 ± 0.08% at B = 1 (`genae run semisupervised --n-labels 100 --seeds 0 1 2
--models m1 m1+m2 --labeled-weight bound-share --epochs 60 --lr 1e-3 --m1-beta 0.25`).
On these codes M2's own options change little or hurt. 30-epoch probes (100 labels, seed 0;
`genae train m2 --m1-run M1 --n-labels 100 --seed 0 --epochs 30 --lr 1e-3 --labeled-weight
bound-share` plus one option), lowest validation error within 30 epochs: no option 3.25%; M1 at
B = 0.1 3.19%; --dim-z 10 3.22%; --alpha 200 3.33% (slower, still falling); --alpha 5 4.21%;
--n-layers 2 6.45%; --beta 2 13.7% at epoch 5, then 17% (as β = 3 on the B = 1 codes above). The
validation error of the 60-epoch runs stays at 3.1–3.4% from epoch 25 on.
Better codes move it: a convolutional M1 (`genae train vae --arch conv --dim-z 50 --beta 0.25
--lr 1e-3 --epochs 30 --seed 0`; all 50 dimensions active, 19 in the MLP's) reached 2.80% validation
error by epoch 29 of the same 30-epoch probe, and over 3 seeds, 60 epochs, 2.27 ± 0.09% test error
(2.23 / 2.21 / 2.37; `genae run semisupervised --n-labels 100 --seeds 0 1 2 --models m1 m1+m2
--labeled-weight bound-share --epochs 60 --lr 1e-3 --m1-beta 0.25 --m1-arch conv --m1-epochs 30`);
with 1000 labels 2.13 ± 0.13% (the same command with --n-labels 1000; Kingma et al. 2.40 ± 0.02).

Classification is argmax_y q(y | x); the engine keeps the weights of the epoch with the lowest
validation error, so the test error reported is the one at the best validation epoch.

    genae train m2 --n-labels 100 --epochs 100 --out runs/m2-100
    genae train vae --dim-z 50 --epochs 100 --out runs/m1 && genae train m2 --m1-run runs/m1 --out runs/m1m2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, Optional

import torch
import torch.nn.functional as F
from torch.distributions import kl_divergence

from genae.data.mnist import MNIST
from genae.data.subsets import balanced_subset, hide_labels, with_labeled_draw
from genae.models.base import N_CLASSES, Batch, Model, one_hot
from genae.nets import Architecture, bernoulli_image, build_networks, diagonal_gaussian, mlp, standard_normal
from genae.nets.builder import IMAGE_SHAPE, IMAGE_SIZE, Decoder, Encoder
from genae.train.config import TrainConfig
from genae.train.engine import Phase, adam

LOG_CLASSES = math.log(N_CLASSES)  # −log p(y) for the uniform prior


@dataclass
class M2Config(TrainConfig):
    n_labels: int = 100
    """Labeled training images, balanced across the classes, drawn from the 50k training split by --seed."""
    labeled_batch: int = 100
    """Labeled images drawn (with replacement) from the labeled subset when a step takes a labeled draw."""
    labeled_every: int = 1
    """A step takes a labeled draw with probability 1/K: 1 = every step; N/B with --batch-size B draws
    about --labeled-batch labeled images per epoch (the Pyro example's rate when that is N_l). The
    training entries labeled_bound and classification in metrics.jsonl are then means over all
    steps, about K times smaller than over the steps that had the draw."""
    adam_beta1: float = 0.9
    """Adam β₁ (the Pyro example uses 0.95)."""
    activation: Literal["relu", "softplus"] = "relu"
    """Hidden-unit nonlinearity of every network (the paper and the Pyro example use softplus)."""
    alpha: Optional[float] = None
    """Weight of the classification loss per labeled image (default 0.1·N/N_labeled, the paper's α)."""
    dim_z: int = 50
    """Latent dimensions of z (the paper's 50)."""
    beta: float = 1.0
    """Weight of KL(q(z|x,y) ‖ p(z)) in the training loss (1: the paper's bound). Above 1, storing the
    digit's identity in z costs more than in y (at most log 10 nats), so the decoder leans on y and the
    unlabeled bound tells q(y|x) more. Validation and test bounds use 1; the training entries of
    metrics.jsonl carry the weight."""
    n_hidden: int = 500
    """Units per hidden layer of the classifier, encoder and decoder (the decoder alone with a CNN --arch)."""
    n_layers: int = 1
    """Hidden layers in each network (the paper's M2: one of 500 units; the decoder alone with another --arch
    than mlp). On pixels 2 learn faster (module docstring); on M1's codes 2 did worse."""
    arch: Architecture = "mlp"
    """Classifier q(y|x) and encoder q(z|x,y) of M2 on pixels: 'mlp' (the paper's: --n-layers hidden layers
    of --n-hidden units, --activation) or another family of the one builder, ReLU throughout (genae.nets.
    builder: fc3 two hidden layers of --n-hidden; the CNNs their convolutions then one linear layer). The
    decoder p(x|y,z) stays the MLP, the only network --n-layers and --activation then shape. M2 only:
    M1+M2's inputs are M1's codes, not images. 100 labels, seed 0, β 3, lr 1e-3: conv reached 11.84%
    validation error after 10 epochs against 12.39% with mlp, at about twice the time per epoch."""
    sigma: Literal["exp", "softplus"] = "exp"
    """Encoder std: 'exp' σ = exp(½·logvar); 'softplus' σ = softplus(ρ)."""
    labeled_weight: Literal["batch", "share", "bound-share"] = "batch"
    """Weight of the labeled terms per step: 'batch' 1 (as much as the unlabeled batch), 'share' K·N_l/N_u
    (K = --labeled-every; an unbiased estimate of the paper's objective; worse here), 'bound-share'
    K·N_l/N_u on the labeled bound and 1 on the classification term (the generative model no longer
    memorises the labeled images; M1+M2 at 100 labels, seed 0: 5.3% test error after 60 epochs against
    11.0% with 'batch' after 50, which was rising after epoch 27). See the module docstring."""
    m1_run: Optional[str] = None
    """A trained `vae` run: M2 is trained on its latent space (M1+M2). None: on pixels (M2)."""
    m1_min_std: float = 0.1
    """M1+M2: a z1 dimension is active when its encoder mean varies with a standard deviation above
    this over the first 1000 training images (Kingma et al.'s code: 0.1; 0 keeps all). Inactive
    dimensions (posterior collapse: q(z1|x) ≈ N(0, 1)) reach the classifier and encoder as 0, and
    p(z1|y, z2) models them as N(0, 1), M1's prior."""

    named_only_when_set: ClassVar[tuple[str, ...]] = TrainConfig.named_only_when_set + ("arch",)


class M2(Model):
    """M2, or M1+M2 with --m1-run; see the module docstring."""

    name = "m2"
    conditional = True   # p(x | y, z): a label chooses what `sample` draws (genae sample --label, plots)

    def __init__(self, config: M2Config):
        super().__init__(config)
        for option, value in (("labeled-batch", config.labeled_batch), ("labeled-every", config.labeled_every),
                              ("dim-z", config.dim_z), ("n-hidden", config.n_hidden), ("n-layers", config.n_layers)):
            if value < 1:
                raise ValueError(f"--{option} {value}: need at least 1")
        if not config.beta >= 0:
            raise ValueError(f"--beta {config.beta}: a KL weight must be >= 0")
        if not 0 <= config.adam_beta1 < 1:
            raise ValueError(f"--adam-beta1 {config.adam_beta1}: must be in [0, 1)")
        if config.m1_run and config.arch != "mlp":
            raise ValueError(f"--arch {config.arch} is for M2 on pixels; with --m1-run M2's inputs are M1's codes "
                             "(choose M1's architecture when training M1)")
        self.m1 = _frozen_m1(config.m1_run) if config.m1_run else None
        size = self.m1.config.dim_z if self.m1 is not None else IMAGE_SIZE
        hidden = [config.n_hidden] * config.n_layers
        act = {"relu": torch.nn.ReLU, "softplus": torch.nn.Softplus}[config.activation]
        if config.arch == "mlp":
            self.classifier = mlp([size, *hidden, N_CLASSES], act)
            self.encoder = Encoder(mlp([size + N_CLASSES, *hidden, 2 * config.dim_z], act), N_CLASSES)
        else:
            sizes = dict(dim_z=config.dim_z, n_hidden=config.n_hidden)
            self.classifier = build_networks(config.arch, **sizes, enc_out=N_CLASSES)[0]
            self.encoder = build_networks(config.arch, **sizes, cond_dim=N_CLASSES)[0]
        out = (2 * size,) if self.m1 is not None else IMAGE_SHAPE
        out_size = 2 * size if self.m1 is not None else IMAGE_SIZE
        self.decoder = Decoder(mlp([config.dim_z + N_CLASSES, *hidden, out_size], act), N_CLASSES, out_shape=out)
        if self.m1 is not None:   # 1 for M1's active dimensions, set in prepare_data
            self.register_buffer("m1_active", torch.ones(size))
        self.labeled: tuple[torch.Tensor, torch.Tensor] | None = None
        self.labeled_weight = 1.0   # w of the module docstring (on the labeled bound); prepare_data sets it
        self.classification_weight = 1.0   # w on α·(−log q(y|x)); 'share' sets it in prepare_data

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """M1+M2 runs saved before --m1-min-std have no mask: they used every dimension."""
        if self.m1 is not None:
            state_dict.setdefault(prefix + "m1_active", torch.ones_like(self.m1_active))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------ data
    def prepare_data(self, data: MNIST) -> MNIST:
        """Keep the labels of a balanced subset of the training split, hide the rest (y = -1)."""
        keep = balanced_subset(data.train.y, self.config.n_labels, seed=self.config.seed)
        self.labeled = (data.train.x[keep], data.train.y[keep])
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

    def prepare(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
        """In training, a labeled draw joins the batch (with probability 1/--labeled-every); with M1,
        images become z1 ~ q(z1 | x)."""
        if self.training and self.labeled is not None:
            x, y = with_labeled_draw(x, y, self.labeled, self.config.labeled_batch, self.config.labeled_every)
        if self.m1 is None:
            return super().prepare(x, y, generator)
        with torch.no_grad():
            q = self.m1.encode(self.m1.prepare(x, y, generator).x)
            z1 = q.rsample() if self.training else q.mean
        return Batch(x=z1 * self.m1_active, y=y, target=z1)

    # ------------------------------------------------------------ the model
    def likelihood(self, out: torch.Tensor):
        """p(x | y, z): Bernoulli pixels (M2) or a diagonal Gaussian over z1 (M1+M2), N(0, 1) in M1's
        inactive dimensions (mean and log-variance 0)."""
        if self.m1 is None:
            return bernoulli_image(out)
        return diagonal_gaussian(out * self.m1_active.repeat(2), "exp")

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | x), in float32 even under --precision bf16 (autocast off here). With bf16
        products in the classifier M2 learnt far slower: 100 labels, seed 0, --n-layers 2, β 3, lr 1e-3,
        lowest validation error in 10 epochs 14.0% against 8.7% in fp32; with the decoder alone in
        float32 14.2%, with this classifier alone 9.1% (AVX-512 machine, README). It is one pass per
        image against ten for the decoder (and for the encoder's layers after the first), so float32
        here costs bf16 little of its speed. The semi-supervised AAE's classifier stays in bf16: there
        bf16 did not slow learning (100 labels, seed 0, 10 epochs: test error 8.03% in bf16, 10.44% in fp32)."""
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            return self.classifier(x if isinstance(self.classifier, Encoder) else x.flatten(1))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """q(z | x, y); without y, the classifier's guess is used."""
        if y is None:
            y = self.classify_logits(x).argmax(1)
        return diagonal_gaussian(self.encoder(x, one_hot(y)), self.config.sigma)

    def decode(self, z: torch.Tensor, y: torch.Tensor):
        return self.likelihood(self.decoder(z, one_hot(y)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel means decoded at the mean of q(z | x, y); without y, with the classifier's guess.
        M1+M2: x are M1's codes (from `prepare`), decoded back to pixels by M1's decoder."""
        if y is None:
            y = self.classify_logits(x).argmax(1)
        out = self.decode(self.encode(x, y).mean, y).mean
        return out if self.m1 is None else self.m1.decode(out).mean

    def _bound(self, q, z: torch.Tensor, labels: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
        """−log p(target | y, z) + beta·KL(q ‖ N(0, I)) − log p(y), for one-hot labels."""
        rec = -self.likelihood(self.decoder(z, labels)).log_prob(target)
        return rec + beta * kl_divergence(q, standard_normal(q.mean.shape, q.mean.device)) + LOG_CLASSES

    def labeled_bound(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """L(x, y) per image, one z sample (the KL weighted by beta)."""
        q = self.encode(x, y)
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
        log_q = F.log_softmax(self.classify_logits(x) if logits is None else logits, dim=1).T   # 10×B
        return (log_q.exp() * (bound + log_q)).sum(0)

    @property
    def alpha(self) -> float:
        if self.config.alpha is not None:
            return self.config.alpha
        return 0.1 * 50_000 / self.config.n_labels

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        known = batch.y >= 0
        zero = batch.x.new_zeros(())
        lab, unl = known.nonzero().flatten(), (~known).nonzero().flatten()
        beta = self.config.beta
        bound_l = self.labeled_bound(batch.x[lab], batch.y[lab], batch.target[lab], beta).mean() if len(lab) else zero
        ce = F.cross_entropy(self.classify_logits(batch.x[lab]), batch.y[lab]) if len(lab) else zero
        bound_u = self.unlabeled_bound(batch.x[unl], batch.target[unl], beta=beta).mean() if len(unl) else zero
        loss = bound_u + self.labeled_weight * bound_l + self.classification_weight * self.alpha * ce
        return loss, {"loss": loss.detach(), "labeled_bound": bound_l.detach(), "unlabeled_bound": bound_u.detach(),
                      "classification": ce.detach()}

    def phases(self) -> list[Phase]:
        params = [p for p in self.parameters() if p.requires_grad]
        return [Phase("m2", adam(params, lr=self.config.lr, betas=(self.config.adam_beta1, 0.999)), self.loss)]

    # ------------------------------------------------------------ evaluation
    def validation_metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        """'loss' is the classification error, so the best epoch is the best validation error."""
        logits = self.classify_logits(batch.x)
        error = (logits.argmax(1) != batch.y).float().mean()
        return {"loss": error, "error": error, "labeled_bound": self.labeled_bound(batch.x, batch.y, batch.target).mean()}

    @torch.no_grad()
    def test_metrics(self, batch: Batch, iw_samples: int) -> dict:
        errors, bounds, generative = [], [], []
        for i in range(0, len(batch), 1000):
            x, y, t = batch.x[i:i + 1000], batch.y[i:i + 1000], batch.target[i:i + 1000]
            errors.append((self.classify_logits(x).argmax(1) != y).float())
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

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None, *, std: float = 1.0) -> torch.Tensor:
        """Images for labels y (default 0..9 in turn) from z ~ N(0, std²·I); through M1's decoder for M1+M2."""
        if y is None:
            y = torch.arange(n) % N_CLASSES
        elif isinstance(y, int):
            y = torch.full((n,), y)
        y = y.to(self.device)
        z = torch.randn(n, self.config.dim_z, device=self.device) * std
        out = self.decode(z, y).mean
        return out if self.m1 is None else self.m1.decode(out).mean


def _frozen_m1(run_dir: str):
    """The M1 VAE of a finished `vae` run, weights loaded, frozen."""
    from genae.models.registry import load

    m1 = load(run_dir, "cpu")
    if m1.name != "vae":
        raise ValueError(f"--m1-run {run_dir}: holds a {m1.name!r} run; M1 is a `vae` run")
    for p in m1.parameters():
        p.requires_grad_(False)
    return m1
