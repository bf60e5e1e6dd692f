"""Evaluation metrics: FID proxy and KID (Inception-V3), LPIPS (VGG) and SSIM."""

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
from neurosql.metrics.lpips_vgg import load_lpips_vgg, lpips_distance, vgg16_cache_path
from neurosql.metrics.pairs import LOAD_LPIPS, evaluate_images, select_pairs, ssim_pairs

__all__ = [
    "InceptionFeatures",
    "LOAD_LPIPS",
    "cached_features",
    "evaluate_images",
    "feature_stats",
    "fid_from_features",
    "frechet_distance",
    "kid_from_features",
    "load_features",
    "load_lpips_vgg",
    "lpips_distance",
    "save_features",
    "select_pairs",
    "ssim_pairs",
    "vgg16_cache_path",
]
