"""The cache: signatures, segment store, manifest."""

from distilabel_nb.cache.layout import CACHE_VERSION, CacheWarning

__all__ = ["CACHE_VERSION", "CacheWarning"]
