"""wavforge: a self-hostable task API that turns music tracks into lossless WAV files."""

__version__ = "0.1.0"
__all__ = ["__version__"]
