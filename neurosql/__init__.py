"""NeuroSQL: a deep generative model trained by quantile assignment.

The package contains the method (lattice, cost, assignment, training loop), the
VAE, GAN and DDPM baselines on shared decoder backbones, the data stages,
the metrics and the reports. ``python -m neurosql --help`` lists the stages
that the Snakemake rules call.
"""

__version__ = "0.1.0"
