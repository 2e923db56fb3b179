"""The model families. Each is a `keras.Model` trained with `fit`: samplers generate images
from noise (`generate`), translators map an input image to an output (`translate`)."""

from keras_gen.models.base import GenerativeModel, Sampler, Translator
from keras_gen.models.base import shipped_presets as presets
from keras_gen.models.diffusion import Diffusion
from keras_gen.models.gan import DCGAN, GAN
from keras_gen.models.pix2pix import Pix2Pix
from keras_gen.models.pixelcnn import PixelCNN
from keras_gen.models.vae import VAE, ConvVAE
from keras_gen.models.vqvae import VQVAE

__all__ = [
    "GenerativeModel", "Sampler", "Translator", "GAN", "DCGAN", "VAE", "ConvVAE", "PixelCNN", "VQVAE",
    "Pix2Pix", "Diffusion", "presets",
]
