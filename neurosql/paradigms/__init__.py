"""Training paradigms that share one decoder backbone: NeuroSQL, VAE and GAN."""

from neurosql.paradigms.base import Paradigm
from neurosql.paradigms.gan import GAN
from neurosql.paradigms.neurosql import NeuroSQL
from neurosql.paradigms.vae import VAE

METHODS = ("neurosql", "vae", "gan")

__all__ = ["GAN", "METHODS", "NeuroSQL", "Paradigm", "VAE"]
