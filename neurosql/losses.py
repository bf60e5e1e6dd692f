"""The image loss shared by generator training and the assignment cost.

loss(x, y) = 0.5 * (1 - SSIM(x, y)) + 0.5 * mean|x - y|, on images in [0, 1].
SSIM is pytorch-msssim's: an 11x11 Gaussian window with sigma 1.5, valid
padding (no border), K1 = 0.01, K2 = 0.03, data range 1, averaged over
positions and channels. ``neurosql.cost`` computes the same quantity for all
pairs at once and is tested against these functions.
"""

import torch
from pytorch_msssim import ssim

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K = (0.01, 0.03)
DATA_RANGE = 1.0


def ssim_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return SSIM(x_i, y_i) for each image pair of two (N, C, H, W) batches."""
    return ssim(
        x,
        y,
        data_range=DATA_RANGE,
        size_average=False,
        win_size=SSIM_WINDOW,
        win_sigma=SSIM_SIGMA,
        K=SSIM_K,
    )


def ssim_l1_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return 0.5 * (1 - SSIM) + 0.5 * L1 for each image pair, shape (N,)."""
    l1 = (x - y).abs().flatten(1).mean(1)
    return 0.5 * (1.0 - ssim_per_image(x, y)) + 0.5 * l1


def ssim_l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the batch mean of the SSIM+L1 loss, the generator's training loss."""
    return ssim_l1_per_image(x, y).mean()


def l2_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the mean squared pixel error per image pair, the l2 ablation cost."""
    return (x - y).pow(2).flatten(1).mean(1)


IMAGE_LOSSES = {
    "ssim_l1": ssim_l1_per_image,
    "l2": l2_per_image,
}
