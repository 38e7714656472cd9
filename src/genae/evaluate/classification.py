"""M1's classifiers on the encoder means of a trained VAE.

Kingma et al. (2014) fed M1's features to a transductive SVM, which also sees the unlabeled images.
genae has two simple stand-ins from scikit-learn:
  svm_error              an ordinary SVC, RBF kernel (C = 1, γ = 'scale'), fitted on the labeled
                         images only. The means are not standardised: a VAE leaves most of its 50
                         code dimensions unused (means ≈ 0), and scaling those up to unit variance
                         buries the used ones (docs/semisupervised.md).
  label_spreading_error  transductive, like the TSVM: label spreading (Zhou et al. 2004) over the
                         k-nearest-neighbour graph of every training image's code, labeled or not;
                         a test image takes the spread label distribution of its k nearest
                         training codes. k = 10; α = 0.9 (the share of a point's labels that
                         comes from its neighbours; sklearn's default 0.2 spreads too locally,
                         docs/semisupervised.md).
"""

from __future__ import annotations

import numpy as np
import torch

from genae.data.transforms import VALIDATION_SEED
from genae.errors import UserError
from genae.models.base import encoded_means


@torch.no_grad()
def encoder_features(model, x: torch.Tensor, y: torch.Tensor | None = None) -> np.ndarray:
    """Means of q(z | x) for the images (prepared as in training, seeded), as a numpy array."""
    device = model.device
    generator = torch.Generator(device=device).manual_seed(VALIDATION_SEED)
    labels = torch.zeros(len(x), dtype=torch.long, device=device) if y is None else y.to(device)
    batch = model.prepare(x.to(device), labels, generator)
    return encoded_means(model, batch.x, labels).cpu().numpy()


def svm_error(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
              test_labels: np.ndarray) -> float:
    """Test error of an RBF SVM fitted on the labeled features."""
    from sklearn.svm import SVC

    classifier = SVC(C=1.0, kernel="rbf", gamma="scale").fit(train_features, train_labels)
    return float((classifier.predict(test_features) != test_labels).mean())


def label_spreading_error(features: np.ndarray, labels: np.ndarray, test_features: np.ndarray,
                          test_labels: np.ndarray, *, n_neighbors: int = 10, alpha: float = 0.9) -> float:
    """Test error of label spreading over all training features; `labels` is −1 where hidden.
    A test image none of whose neighbours the labels reached counts as an error."""
    from sklearn.semi_supervised import LabelSpreading

    if not (labels >= 0).any():
        raise UserError("label spreading needs at least one labeled image (labels >= 0)")
    spread = LabelSpreading(kernel="knn", n_neighbors=n_neighbors, alpha=alpha, max_iter=1000)
    spread.fit(features, labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        proba = spread.predict_proba(test_features)
    reached = np.isfinite(proba).all(1) & (proba.sum(1) > 0)
    predicted = np.where(reached, spread.classes_[np.nan_to_num(proba).argmax(1)], -1)
    return float((predicted != test_labels).mean())
