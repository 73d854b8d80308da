"""The four PiiGAN networks, with the reference's layer names."""

from piigan_tf.networks.critics import Critic, global_critic, local_critic
from piigan_tf.networks.extractor import Extractor, sample_z
from piigan_tf.networks.generator import Generator

__all__ = ["Critic", "Extractor", "Generator", "global_critic", "local_critic", "sample_z"]
