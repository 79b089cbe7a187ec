"""The SDK version (the PyPI release of ``warren-sdk``)."""

__version__ = "0.1.0"
