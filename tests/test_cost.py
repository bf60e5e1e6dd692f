"""Tests for neurosql.cost against pytorch-msssim and direct computations."""

import pytest
import torch
import torch.nn.functional as F

from neurosql.cost import pairwise_cost, pairwise_cost_reference
from neurosql.losses import SSIM_K

TOLERANCE = 1e-5


def random_images(count: int, channels: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, channels, size, size, generator=generator)


def conv_ssim_l1(x: torch.Tensor, y: torch.Tensor, pad: int, dtype=torch.float32) -> torch.Tensor:
    """Compute the SSIM+L1 cost of all pairs with 2-D convolutions, zero-padded by pad."""
    n, channels = x.shape[:2]
    m = y.shape[0]
    xs = x.to(dtype).repeat_interleave(m, dim=0)
    ys = y.to(dtype).repeat(n, 1, 1, 1)
    offsets = torch.arange(11, dtype=torch.float64) - 5
    gauss = torch.exp(-(offsets**2) / (2 * 1.5**2))
    gauss = gauss / gauss.sum()
    kernel = torch.outer(gauss, gauss).to(dtype).reshape(1, 1, 11, 11).repeat(channels, 1, 1, 1)

    def blur(images):
        return F.conv2d(images, kernel, padding=pad, groups=channels)

    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    mu_x, mu_y = blur(xs), blur(ys)
    var_x = blur(xs * xs) - mu_x**2
    var_y = blur(ys * ys) - mu_y**2
    cov = blur(xs * ys) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    ssim = ssim_map.flatten(1).mean(1)
    l1 = (xs - ys).abs().flatten(1).mean(1)
    return (0.5 * (1 - ssim) + 0.5 * l1).reshape(n, m).float()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_ssim_l1_matches_reference(channels, size):
    x = random_images(5, channels, size, seed=size)
    y = random_images(4, channels, size, seed=size + 1)
    expected = pairwise_cost_reference(x, y)
    assert (pairwise_cost(x, y) - expected).abs().max() <= TOLERANCE


def test_ssim_l1_small_tiles():
    x = random_images(7, 3, 28, seed=0)
    y = random_images(6, 3, 28, seed=1)
    expected = pairwise_cost_reference(x, y)
    # max_bytes=1 forces one row of window positions per band.
    cost = pairwise_cost(x, y, chunk_size=2, max_bytes=1)
    assert (cost - expected).abs().max() <= TOLERANCE


def test_ssim_l1_structured_images():
    # Smooth images with shared structure, closer to real data than noise.
    grid = torch.linspace(0, 1, 32)
    base = torch.sin(6 * grid[:, None] + 3 * grid[None, :]) * 0.5 + 0.5
    x = torch.stack([base * s for s in (0.2, 0.5, 0.9)])[:, None]
    y = torch.stack([base.T * s for s in (0.3, 1.0)])[:, None]
    expected = pairwise_cost_reference(x, y)
    assert (pairwise_cost(x, y) - expected).abs().max() <= TOLERANCE


def test_ssim_l1_flat_images_float64():
    # Nearly flat bright images: E[xy] - mu_x mu_y cancels badly in float32,
    # so compare with a float64 computation instead of pytorch-msssim.
    generator = torch.Generator().manual_seed(16)
    x = (0.9 + 0.01 * torch.randn(5, 3, 32, 32, generator=generator)).clamp(0, 1)
    y = (0.9 + 0.01 * torch.randn(4, 3, 32, 32, generator=generator)).clamp(0, 1)
    expected = conv_ssim_l1(x, y, pad=0, dtype=torch.float64)
    assert (pairwise_cost(x, y) - expected).abs().max() <= 1e-6


def test_ssim_l1_identical_images_zero():
    x = random_images(4, 1, 28, seed=2)
    diagonal = pairwise_cost(x, x).diagonal()
    assert diagonal.abs().max() <= 1e-6


def test_conv_helper_matches_msssim():
    x = random_images(3, 3, 32, seed=3)
    y = random_images(2, 3, 32, seed=4)
    assert (conv_ssim_l1(x, y, pad=0) - pairwise_cost_reference(x, y)).abs().max() <= TOLERANCE


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 64)])
def test_same_padding_matches_conv(channels, size):
    x = random_images(4, channels, size, seed=5)
    y = random_images(3, channels, size, seed=6)
    cost = pairwise_cost(x, y, padding="same")
    assert (cost - conv_ssim_l1(x, y, pad=5)).abs().max() <= TOLERANCE


def test_same_differs_from_valid():
    x = random_images(3, 1, 28, seed=7)
    y = random_images(3, 1, 28, seed=8)
    gap = (pairwise_cost(x, y, padding="same") - pairwise_cost(x, y)).abs().max()
    assert gap > 1e-3


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 64), (1, 8)])
def test_l2_matches_direct(channels, size):
    x = random_images(6, channels, size, seed=9)
    y = random_images(5, channels, size, seed=10)
    direct = (x[:, None] - y[None, :]).pow(2).flatten(2).mean(2)
    assert (pairwise_cost(x, y, loss="l2") - direct).abs().max() <= TOLERANCE
    assert (pairwise_cost(x, y, loss="l2", chunk_size=4) - direct).abs().max() <= TOLERANCE


def test_l2_matches_reference():
    x = random_images(4, 3, 32, seed=11)
    y = random_images(3, 3, 32, seed=12)
    expected = pairwise_cost_reference(x, y, loss="l2")
    assert (pairwise_cost(x, y, loss="l2") - expected).abs().max() <= TOLERANCE


def test_l2_nonnegative_for_identical():
    x = random_images(5, 1, 28, seed=13)
    assert pairwise_cost(x, x, loss="l2").min() >= 0


def test_output_shape_and_dtype():
    cost = pairwise_cost(random_images(3, 1, 28, 0).double(), random_images(5, 1, 28, 1).double())
    assert cost.shape == (3, 5)
    assert cost.dtype == torch.float32


def test_small_image_rejected():
    x = random_images(2, 1, 10, seed=0)
    with pytest.raises(ValueError, match="10x10 px are smaller than the 11x11"):
        pairwise_cost(x, x)


def test_unknown_loss_rejected():
    x = random_images(2, 1, 28, seed=0)
    with pytest.raises(ValueError, match="'lpips'"):
        pairwise_cost(x, x, loss="lpips")


def test_unknown_padding_rejected():
    x = random_images(2, 1, 28, seed=0)
    with pytest.raises(ValueError, match="'reflect'"):
        pairwise_cost(x, x, padding="reflect")


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="same"):
        pairwise_cost(random_images(2, 1, 28, 0), random_images(2, 3, 28, 1))


def test_integer_images_rejected():
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(TypeError, match="uint8"):
        pairwise_cost(x, x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = random_images(40, 3, 32, seed=14)
    y = random_images(30, 3, 32, seed=15)
    for loss in ("ssim_l1", "l2"):
        cpu = pairwise_cost(x, y, loss=loss)
        gpu = pairwise_cost(x.cuda(), y.cuda(), loss=loss).cpu()
        assert (cpu - gpu).abs().max() <= TOLERANCE
