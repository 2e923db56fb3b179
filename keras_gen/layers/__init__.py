"""Layers of the families: causal (masked) convolutions and gated blocks for PixelCNN, the vector
quantiser of the VQ-VAE, and a replica-exact dropout."""

from keras_gen.layers.dropout import ReplicaExactDropout
from keras_gen.layers.masked import GatedPixelCNNBlock, MaskedConv2D, MaskedResidualBlock, causal_mask
from keras_gen.layers.quantizer import VectorQuantizer

__all__ = [
    "MaskedConv2D", "GatedPixelCNNBlock", "MaskedResidualBlock", "causal_mask", "VectorQuantizer",
    "ReplicaExactDropout",
]
