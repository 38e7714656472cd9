"""M1's classifier: a support vector machine on the encoder means of a trained VAE.

Kingma et al. (2014) fed M1's features to a transductive SVM; genae uses scikit-learn's ordinary
SVC with an RBF kernel (C = 1, γ = 'scale') on standardised encoder means, fitted on the labeled
images only — a simple, documented stand-in that does not see the unlabeled images.
"""

from __future__ import annotations

import numpy as np
import torch

from genae.plots.latent import encoded_means


@torch.no_grad()
def encoder_features(model, x: torch.Tensor, y: torch.Tensor | None = None) -> np.ndarray:
    """Means of q(z | x) for the images (prepared as in training, seeded), as a numpy array."""
    from genae.train.engine import VALIDATION_SEED

    device = model.device
    generator = torch.Generator(device=device).manual_seed(VALIDATION_SEED)
    labels = torch.zeros(len(x), dtype=torch.long, device=device) if y is None else y.to(device)
    batch = model.prepare(x.to(device), labels, generator)
    return encoded_means(model, batch.x, labels).cpu().numpy()


def svm_error(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
              test_labels: np.ndarray) -> float:
    """Test error of an RBF SVM fitted on (standardised) labeled features."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    classifier = make_pipeline(StandardScaler(), SVC(C=1.0, kernel="rbf", gamma="scale"))
    classifier.fit(train_features, train_labels)
    return float((classifier.predict(test_features) != test_labels).mean())
