"""Priors for the adversarial autoencoder's code: a standard Gaussian or a mixture of ten Gaussians.

The mixture (Makhzani et al. 2015, Fig. 2 and 4) in d ≥ 2 dimensions: component k (one per digit)
is a Gaussian whose mean sits on a circle of radius r in the plane of the first two coordinates,
at angle θ_k = 2πk/10, elongated along its own radius:

    z = r·u_k + s_r·ε₁·u_k + s_t·ε₂·v_k + s_t·(ε₃, …, ε_d),   ε ~ N(0, I),
    u_k = (cos θ_k, sin θ_k, 0, …),  v_k = (−sin θ_k, cos θ_k, 0, …),

i.e. N(r·u_k, R_k·diag(s_r², s_t², …, s_t²)·R_kᵀ) with R_k the rotation by θ_k in that plane.
In 2-D these are the paper's ten petals; beyond 2-D the extra coordinates are narrow Gaussians
(std s_t) around 0, so the components stay separated by their first two coordinates.

    prior = GaussianMixturePrior(dim=2)
    z = prior.sample(torch.tensor([3, -1]))   # one code from component 3, one from any component
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

from genae.errors import UserError

N_COMPONENTS = 10


class GaussianPrior:
    """p(z) = N(0, I); labels are ignored."""

    def __init__(self, dim: int):
        self.dim = dim

    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.randn(len(labels), self.dim, device=labels.device)

    def distribution(self, device: torch.device | str = "cpu"):
        return Independent(Normal(torch.zeros(self.dim, device=device), torch.ones(self.dim, device=device)), 1)


class GaussianMixturePrior:
    """Ten rotated Gaussians on a circle (see the module docstring); label k draws from component k,
    label −1 from the whole (equally weighted) mixture."""

    def __init__(self, dim: int, *, radius: float = 4.0, radial_std: float = 1.0, tangential_std: float = 0.25):
        if dim < 2:
            raise UserError(f"--dim-z {dim}: the mixture of Gaussians needs a code of at least 2 dimensions")
        if not (radius > 0 and radial_std > 0 and tangential_std > 0):
            raise UserError(f"mixture radius and stds must be > 0, got {radius}, {radial_std}, {tangential_std}")
        self.dim, self.radius = dim, radius
        self.stds = torch.tensor([radial_std] + [tangential_std] * (dim - 1))
        self.angles = 2 * math.pi * torch.arange(N_COMPONENTS) / N_COMPONENTS
        self._device_copies: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(angles, stds) on `device`, copied there once: a training step copies nothing from the host."""
        if device not in self._device_copies:
            self._device_copies[device] = (self.angles.to(device), self.stds.to(device))
        return self._device_copies[device]

    def means(self) -> torch.Tensor:
        """N_COMPONENTS×dim component means."""
        m = torch.zeros(N_COMPONENTS, self.dim)
        m[:, 0], m[:, 1] = self.radius * self.angles.cos(), self.radius * self.angles.sin()
        return m

    def _rotate(self, e: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Rotate the first two coordinates of each row of e by θ_k."""
        angles = self._on(e.device)[0][k]
        c, s = angles.cos(), angles.sin()
        out = e.clone()
        out[:, 0], out[:, 1] = c * e[:, 0] - s * e[:, 1], s * e[:, 0] + c * e[:, 1]
        return out

    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        """One code per label: from component `label`, or from a uniformly chosen one where label < 0."""
        k = torch.where(labels >= 0, labels, torch.randint(N_COMPONENTS, labels.shape, device=labels.device))
        e = torch.randn(len(k), self.dim, device=labels.device) * self._on(labels.device)[1]
        e[:, 0] += self.radius
        return self._rotate(e, k)

    def axis_points(self, k: int, n: int, n_std: float = 2.0) -> torch.Tensor:
        """n codes along component k's long (radial) axis, from −n_std to +n_std radial stds."""
        t = torch.linspace(-n_std, n_std, n) * self.stds[0] + self.radius
        e = torch.zeros(n, self.dim)
        e[:, 0] = t
        return self._rotate(e, torch.full((n,), k))

    def components(self, device: torch.device | str = "cpu") -> MultivariateNormal:
        """The ten components as one batched MultivariateNormal."""
        rot = torch.eye(self.dim).repeat(N_COMPONENTS, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1] = self.angles.cos(), -self.angles.sin()
        rot[:, 1, 0], rot[:, 1, 1] = self.angles.sin(), self.angles.cos()
        cov = rot @ torch.diag(self.stds ** 2) @ rot.transpose(1, 2)
        return MultivariateNormal(self.means().to(device), covariance_matrix=cov.to(device))

    def distribution(self, device: torch.device | str = "cpu") -> MixtureSameFamily:
        return MixtureSameFamily(Categorical(torch.full((N_COMPONENTS,), 1 / N_COMPONENTS, device=device)),
                                 self.components(device))


def make_prior(kind: str, dim: int, **mixture):
    """'gaussian' (the mixture's options are ignored) or 'gmm' (radius, radial_std, tangential_std)."""
    if kind == "gaussian":
        return GaussianPrior(dim)
    if kind == "gmm":
        return GaussianMixturePrior(dim, **mixture)
    raise UserError(f"unknown prior {kind!r}; choose gaussian or gmm")
