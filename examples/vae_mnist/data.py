"""The MNIST VAE example's data: torchvision's MNIST files and dynamic binarisation."""

from __future__ import annotations

import torch
from torch import Tensor


def load_mnist(data_dir: str, train: bool, download: bool = True) -> tuple[Tensor, Tensor]:
    """Grey levels in [0, 1], ``(N, 784)``, and labels, via ``torchvision.datasets.MNIST``."""
    from torchvision.datasets import MNIST

    data = MNIST(data_dir, train=train, download=download)
    return data.data.reshape(-1, 784).float() / 255.0, data.targets


def binarize(images: Tensor) -> Tensor:
    """Dynamic binarisation: each pixel ~ Bernoulli(grey level), drawn anew each time."""
    return torch.bernoulli(images)
