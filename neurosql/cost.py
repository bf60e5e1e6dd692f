"""All-pairs image cost matrices for the NeuroSQL assignment step.

``pairwise_cost(x, y)`` returns C[i, k] = loss(x_i, y_k) for every pair of a
batch of data images x and a batch of generated images y. The loss is the
training loss of ``neurosql.losses`` (0.5 * (1 - SSIM) + 0.5 * L1) or the
mean squared pixel error ("l2").

SSIM for all pairs is computed in matrix form. For one window position p and
one channel, let x_p (n, 121) and y_p (m, 121) be the 11x11 patches of all
images at p and w the flattened Gaussian window (summing to 1). The window
means mu = x_p @ w and the variances are per-image vectors. Only the
weighted covariance cov_xy = (x_p - mu_x) @ (w * (y_p - mu_y))^T couples the
two images, and it is one matrix product per position. The SSIM map of a
pair at p is then

    (2 mu_x mu_y + C1) * (2 cov_xy + C2)
    / ((mu_x^2 + mu_y^2 + C1) * (var_x + var_y + C2)),

and SSIM is its mean over positions and channels, as in pytorch-msssim 1.0.
Two algebraic folds keep the element-wise work small. The numerator's
second factor is one product of augmented patch matrices,
[2 (x_p - mu_x), 1] @ [w * (y_p - mu_y), C2]^T. The denominator is a rank-4
product of per-image vectors. Centring the patches before the products
avoids the cancellation in E[xy] - mu_x mu_y and E[x^2] - mu_x^2 that
float32 suffers on flat, bright regions.
"""

import logging

import torch
import torch.nn.functional as F

from neurosql.losses import (
    DATA_RANGE,
    IMAGE_LOSSES,
    SSIM_K,
    SSIM_SIGMA,
    SSIM_WINDOW,
)

log = logging.getLogger(__name__)

COST_LOSSES = ("ssim_l1", "l2")
PADDINGS = ("valid", "same")
DEFAULT_MAX_BYTES = 512 * 2**20

# A row tile of about 2 MiB stays in a typical CPU L2/L3 cache while the
# window positions of a band are added into it.
_CPU_TILE_BYTES = 2 * 2**20
# Window positions summed into one float32 partial tile before it is added
# to the output. Two-level summation keeps the rounding error of a mean over
# thousands of positions (64 px, 3 channels) small.
_FLUSH_EVERY = 32
_WINDOW_AREA = SSIM_WINDOW * SSIM_WINDOW
# Bytes per window position and image while a band is built: the stored
# augmented patch row (area + 1), numerator (2) and denominator (4) factors,
# and a few per-position temporaries. An estimate from tensor sizes, not a
# measured peak.
_BYTES_PER_WINDOW_IMAGE = 4 * (_WINDOW_AREA + 1 + 2 + 4 + 24)
# Window positions per block when summing squared centred patches, which
# bounds that temporary to a few patch rows.
_VARIANCE_BLOCK = 16


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Return the flattened 2-D Gaussian window (size * size,) that sums to 1."""
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).reshape(-1).float()


def _check_images(x: torch.Tensor, y: torch.Tensor) -> None:
    for name, t in (("x", x), ("y", y)):
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(
                f"{name} has dtype {t.dtype}, but float images in [0, 1] are expected "
                "(for uint8 data use x.float() / 255)"
            )
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"x and y must have the same (C, H, W), got {tuple(x.shape[1:])} and {tuple(y.shape[1:])}"
        )
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} but y is on {y.device}; move both to one device")


def pairwise_cost(
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str = "ssim_l1",
    chunk_size: int | None = None,
    padding: str = "valid",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> torch.Tensor:
    """Compute the cost matrix C[i, k] = loss(x[i], y[k]) for all pairs.

    Args:
        x: data images (n, C, H, W) in [0, 1], any float dtype (computed in
            float32), on CPU or CUDA.
        y: generated images (m, C, H, W) on the same device.
        loss: "ssim_l1" for 0.5 * (1 - SSIM) + 0.5 * mean |x - y|, the loss of
            ``neurosql.losses.ssim_l1_per_image``; "l2" for the mean squared
            pixel error, computed as (|x|^2 + |y|^2 - 2 x.y) / pixels and
            clamped at 0.
        chunk_size: rows of x per tile. The default picks about 2 MiB tiles
            on CPU and the largest tile the memory bound allows on CUDA.
        padding: "valid" uses only window centres whose 11x11 window lies
            inside the image, which is what pytorch-msssim (and so the
            training loss) computes. "same" zero-pads each image by 5 pixels
            so that every pixel is a window centre. The padded zeros enter
            the window means and variances, so "same" is a different loss
            from pytorch-msssim's; use it only as an explicit variant.
        max_bytes: bound on the working memory for "ssim_l1", in bytes.
            The working set is the factor matrices of a band of window rows
            (about 0.6 KB per image and window position) plus four float32
            tiles of chunk_size x m. Bands and tiles are sized to stay under
            max_bytes, except that a band never has less than one row of
            window positions and a tile never less than chunk_size rows.
            The (n, m) float32 result and the inputs are not counted.
            NOTE: the sizing uses tensor sizes, not a measured peak. Allow
            some tens of MiB more for library buffers; benchmarks/bench_cost.py
            prints the measured peak.

    Returns:
        float32 tensor (n, m) on the device of x.

    Raises:
        ValueError: for an unknown loss or padding, mismatched shapes or
            devices, or (for "ssim_l1") images smaller than the 11x11 window.
    """
    _check_images(x, y)
    if loss not in COST_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {COST_LOSSES}")
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; expected one of {PADDINGS}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of rows, got {chunk_size}")

    x = x.float()
    y = y.float()
    if loss == "l2":
        return _l2_cost(x, y, chunk_size)

    height, width = x.shape[-2:]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(
            f"images of {height}x{width} px are smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} "
            "SSIM window; upsample them or use loss='l2'"
        )
    return _ssim_l1_cost(x, y, chunk_size, padding, max_bytes)


def _l2_cost(x: torch.Tensor, y: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    n, m = x.shape[0], y.shape[0]
    xf = x.reshape(n, -1)
    yf = y.reshape(m, -1)
    pixels = xf.shape[1]
    y_sq = (yf * yf).sum(1)
    out = torch.empty(n, m, device=x.device)
    step = chunk_size or n

    # Clamp because rounding in |x|^2 + |y|^2 - 2 x.y can go slightly below 0.
    for start in range(0, n, step):
        rows = xf[start : start + step]
        tile = out[start : start + step]
        torch.mm(rows, yf.T, out=tile)
        tile.mul_(-2.0).add_((rows * rows).sum(1)[:, None]).add_(y_sq[None, :])
        tile.clamp_(min=0.0).div_(pixels)
    return out


def _default_chunk(n: int, m: int, device: torch.device, max_bytes: int) -> int:
    # NOTE: the CUDA sizing (half the budget for tiles) is untuned. Only the
    # CUDA test in tests/test_cost.py exercises that path.
    if device.type == "cpu":
        rows = _CPU_TILE_BYTES // (4 * m)
    else:
        rows = (max_bytes // 2) // (4 * 4 * m)
    return int(min(n, max(16, rows)))


def _band_factors(
    images: torch.Tensor, channel: int, first_row: int, last_row: int, window: torch.Tensor, is_x: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build the per-image factor matrices of a band of window rows of one channel.

    Returns three tensors of shape (positions, count, width), one row per
    window position of the band and image. For x the rows are the patch row
    [2 (p - mu), 1], the numerator row [2 mu, 1] and the denominator row
    [a1 a2, a1, a2, 1] with a1 = mu^2 + C1 and a2 = var + C2. For y they are
    [w * (p - mu), C2], [mu, C1] and [1, var, mu^2, mu^2 var]. The dot
    products of matching x and y rows are 2 cov_xy + C2, 2 mu_x mu_y + C1
    and (mu_x^2 + mu_y^2 + C1) (var_x + var_y + C2).
    """
    c1 = (SSIM_K[0] * DATA_RANGE) ** 2
    c2 = (SSIM_K[1] * DATA_RANGE) ** 2
    band = images[:, channel : channel + 1, first_row : last_row + SSIM_WINDOW]
    count = band.shape[0]

    # Window means of every position by convolution, as (positions, count).
    kernel = window.reshape(1, 1, SSIM_WINDOW, SSIM_WINDOW)
    mu = F.conv2d(band, kernel).reshape(count, -1).T
    ones = torch.ones_like(mu)

    # Copy the patches from a sliding-window view straight into the
    # augmented rows (one strided copy), centre them on their window means
    # and take the variances from the centred values.
    sliding = band[:, 0].unfold(1, SSIM_WINDOW, 1).unfold(2, SSIM_WINDOW, 1)
    band_rows, band_cols = sliding.shape[1:3]
    patch_rows = torch.empty(band_rows * band_cols, count, _WINDOW_AREA + 1, device=band.device)
    body = patch_rows[..., :_WINDOW_AREA]
    body.view(band_rows, band_cols, count, SSIM_WINDOW, SSIM_WINDOW).copy_(sliding.permute(1, 2, 0, 3, 4))
    body.sub_(mu[..., None])
    var = torch.empty_like(mu)
    for first in range(0, body.shape[0], _VARIANCE_BLOCK):
        block = body[first : first + _VARIANCE_BLOCK]
        var[first : first + _VARIANCE_BLOCK] = (block * block) @ window

    if is_x:
        body.mul_(2.0)
        patch_rows[..., _WINDOW_AREA] = 1.0
        numer_rows = torch.stack([2.0 * mu, ones], dim=-1)
        a1 = mu * mu + c1
        a2 = var + c2
        denom_rows = torch.stack([a1 * a2, a1, a2, ones], dim=-1)
    else:
        body.mul_(window)
        patch_rows[..., _WINDOW_AREA] = c2
        numer_rows = torch.stack([mu, ones * c1], dim=-1)
        mu_sq = mu * mu
        denom_rows = torch.stack([ones, var, mu_sq, mu_sq * var], dim=-1)
    return patch_rows, numer_rows, denom_rows


def _ssim_l1_cost(
    x: torch.Tensor, y: torch.Tensor, chunk_size: int | None, padding: str, max_bytes: int
) -> torch.Tensor:
    n, channels = x.shape[:2]
    m = y.shape[0]
    x_win, y_win = x, y
    if padding == "same":
        half = SSIM_WINDOW // 2
        x_win = F.pad(x, (half, half, half, half))
        y_win = F.pad(y, (half, half, half, half))
    window = gaussian_window().to(x.device)
    window_rows = x_win.shape[-2] - SSIM_WINDOW + 1
    window_cols = x_win.shape[-1] - SSIM_WINDOW + 1
    total_windows = channels * window_rows * window_cols

    # Size the row tiles first. Several window positions share one batched
    # tile when a single position's tile is small (few images). The rest of
    # the budget goes to the factors of a band of window rows.
    chunk = min(n, chunk_size or _default_chunk(n, m, x.device, max_bytes))
    tile_budget = _CPU_TILE_BYTES if x.device.type == "cpu" else max_bytes // 2
    batch = int(max(1, min(window_cols, tile_budget // (4 * 4 * chunk * m))))
    tile_bytes = 4 * 4 * batch * chunk * m
    band_bytes = _BYTES_PER_WINDOW_IMAGE * (n + m) * window_cols
    band_rows = int(max(1, min(window_rows, (max_bytes - tile_bytes) // band_bytes)))
    log.debug(
        "pairwise SSIM: %d x %d pairs, %d windows, %d rows x %d windows per tile, %d window rows per band",
        n, m, total_windows, chunk, batch, band_rows,
    )

    out = torch.zeros(n, m, device=x.device)
    cross = torch.empty(batch, chunk, m, device=x.device)
    numer = torch.empty_like(cross)
    denom = torch.empty_like(cross)
    partial = torch.zeros(chunk, m, device=x.device)

    for channel in range(channels):
        for first_row in range(0, window_rows, band_rows):
            last_row = min(window_rows, first_row + band_rows) - 1
            # Build the factors inside the call so that one band's factors
            # are freed before the next band's are built.
            _accumulate_band(
                out,
                partial,
                (cross, numer, denom),
                _band_factors(x_win, channel, first_row, last_row, window, is_x=True),
                _band_factors(y_win, channel, first_row, last_row, window, is_x=False),
                chunk,
            )

    # cost = 0.5 * (1 - mean SSIM) + 0.5 * L1, where L1 is the mean absolute
    # difference over the unpadded pixels for either padding.
    out.mul_(-0.5 / total_windows).add_(0.5)
    _add_l1(out, x, y, chunk)
    return out


def _accumulate_band(
    out: torch.Tensor,
    partial: torch.Tensor,
    buffers: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    x_factors: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    y_factors: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    chunk: int,
) -> None:
    """Add the SSIM map values of every window position of a band to out."""
    n = out.shape[0]
    positions = x_factors[0].shape[0]
    batch = buffers[0].shape[0]
    y_t = [f.transpose(1, 2) for f in y_factors]

    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        partial_t = partial[: stop - start]
        partial_t.zero_()
        pending = 0

        for first in range(0, positions, batch):
            last = min(positions, first + batch)
            cross_t, numer_t, denom_t = (b[: last - first, : stop - start] for b in buffers)
            torch.bmm(x_factors[0][first:last, start:stop], y_t[0][first:last], out=cross_t)
            torch.bmm(x_factors[1][first:last, start:stop], y_t[1][first:last], out=numer_t)
            torch.bmm(x_factors[2][first:last, start:stop], y_t[2][first:last], out=denom_t)
            cross_t.mul_(numer_t)
            if last - first == 1:
                partial_t.addcdiv_(cross_t[0], denom_t[0])
            else:
                partial_t.add_(cross_t.div_(denom_t).sum(0))

            # Two-level summation keeps the float32 rounding of a mean over
            # thousands of windows small.
            pending += last - first
            if pending >= _FLUSH_EVERY:
                out[start:stop].add_(partial_t)
                partial_t.zero_()
                pending = 0
        out[start:stop].add_(partial_t)


def _add_l1(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int) -> None:
    n, m = x.shape[0], y.shape[0]
    xf = x.reshape(n, -1)
    yf = y.reshape(m, -1)
    for start in range(0, n, chunk):
        l1 = torch.cdist(xf[start : start + chunk], yf, p=1.0)
        out[start : start + chunk].add_(l1, alpha=0.5 / xf.shape[1])


def pairwise_cost_reference(x: torch.Tensor, y: torch.Tensor, loss: str = "ssim_l1") -> torch.Tensor:
    """Compute the cost matrix one row at a time with ``neurosql.losses`` (slow).

    Each row i evaluates the per-image loss on (x[i] repeated m times, y), so
    SSIM is pytorch-msssim's own implementation with valid padding. Tests
    and the cost benchmark use it as the ground truth for ``pairwise_cost``.
    """
    _check_images(x, y)
    if loss not in IMAGE_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {tuple(IMAGE_LOSSES)}")
    loss_fn = IMAGE_LOSSES[loss]
    x = x.float()
    y = y.float()
    m = y.shape[0]
    rows = [loss_fn(x[i : i + 1].expand(m, -1, -1, -1), y) for i in range(x.shape[0])]
    return torch.stack(rows)
