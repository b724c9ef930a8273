"""neuroplast.visualize: activation maximisation (pixel / Fourier / generator-code parameterisations,
random transforms, image priors) and the small models and measures its studies use."""

from neuroplast.visualize.generator import (
    Autoencoder,
    CodeStats,
    Decoder,
    Encoder,
    code_stats,
    fit_autoencoder,
)
from neuroplast.visualize.maximize import AMResult, maximize, neuron_activation
from neuroplast.visualize.models import (
    OtherCNN,
    SmallCNN,
    accuracy,
    fit_classifier,
    nearest_neighbour_distance,
    recognition_rate,
    site_activations,
)
from neuroplast.visualize.parameterize import (
    CodeImage,
    FourierImage,
    Parameterization,
    PixelImage,
    fourier_scale,
)
from neuroplast.visualize.transforms import (
    Compose,
    Jitter,
    RandomRotate,
    RandomScale,
    affine_warp,
    l2,
    standard_transforms,
    total_variation,
)

__all__ = [
    "maximize", "AMResult", "neuron_activation",
    "Parameterization", "PixelImage", "FourierImage", "CodeImage", "fourier_scale",
    "Jitter", "RandomScale", "RandomRotate", "Compose", "affine_warp", "standard_transforms",
    "l2", "total_variation",
    "Autoencoder", "Encoder", "Decoder", "CodeStats", "code_stats", "fit_autoencoder",
    "SmallCNN", "OtherCNN", "fit_classifier", "accuracy", "recognition_rate", "site_activations",
    "nearest_neighbour_distance",
]
