"""The package version (one place: the package, ``pipeline.dump()``)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
