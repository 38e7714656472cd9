"""Network builders and distribution heads."""

from genae.nets.builder import ARCHITECTURES, Architecture, build_networks, count_parameters
from genae.nets.heads import SIGMAS, bernoulli_image, diagonal_gaussian, standard_normal
from genae.nets.layers import IMAGE_SHAPE, IMAGE_SIZE, Decoder, Encoder, mlp

__all__ = ["ARCHITECTURES", "IMAGE_SHAPE", "IMAGE_SIZE", "Architecture", "SIGMAS", "Decoder", "Encoder", "bernoulli_image", "build_networks",
           "count_parameters", "diagonal_gaussian", "mlp", "standard_normal"]
