"""Network builders and distribution heads."""

from genae.nets.builder import ARCHITECTURES, Decoder, Encoder, build_networks, count_parameters, mlp
from genae.nets.heads import SIGMAS, bernoulli_image, diagonal_gaussian, standard_normal

__all__ = ["ARCHITECTURES", "SIGMAS", "Decoder", "Encoder", "bernoulli_image", "build_networks",
           "count_parameters", "diagonal_gaussian", "mlp", "standard_normal"]
