"""Layers of the families: causal (masked) convolutions and gated blocks for PixelCNN, the
reparameterisation trick for VAEs."""

from keras_gen.layers.masked import GatedPixelCNNBlock, MaskedConv2D, MaskedResidualBlock, causal_mask
from keras_gen.layers.reparameterize import Reparameterize, reparameterize

__all__ = [
    "MaskedConv2D", "GatedPixelCNNBlock", "MaskedResidualBlock", "causal_mask",
    "Reparameterize", "reparameterize",
]
