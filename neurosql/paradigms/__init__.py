"""Training paradigms: NeuroSQL, VAE and GAN around one shared decoder, and the DDPM baseline."""

from neurosql.paradigms.base import Paradigm
from neurosql.paradigms.ddpm import DDPM
from neurosql.paradigms.gan import GAN
from neurosql.paradigms.neurosql import NeuroSQL
from neurosql.paradigms.vae import VAE

METHODS = ("neurosql", "vae", "gan", "ddpm")

__all__ = ["DDPM", "GAN", "METHODS", "NeuroSQL", "Paradigm", "VAE"]
