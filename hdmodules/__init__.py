"""hdmodules: builds as pure functions of their inputs, installed once into a hashed store."""

__version__ = "0.1.0"
