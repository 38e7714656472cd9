"""Network builders and distribution heads."""

from genae.nets.builder import ARCHITECTURES, Architecture, Decoder, Encoder, build_networks, count_parameters, mlp
from genae.nets.heads import SIGMAS, bernoulli_image, diagonal_gaussian, standard_normal

__all__ = ["ARCHITECTURES", "Architecture", "SIGMAS", "Decoder", "Encoder", "bernoulli_image", "build_networks",
           "count_parameters", "diagonal_gaussian", "mlp", "standard_normal"]
