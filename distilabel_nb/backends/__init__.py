"""Backends that compute a pipeline's batches elsewhere than in the driver process.

Importing this package registers ``"ray"`` with the engine's backend registry, so that
``pipeline.run(backend="ray")`` works; nothing here imports Ray until a Ray run starts.
"""

from __future__ import annotations

from typing import Any

from distilabel_nb.engine.backends import Backend, register_backend

__all__: list[str] = []


def _ray_backend(**options: Any) -> Backend:
    try:
        from distilabel_nb.backends.ray import RayBackend
    except ImportError as error:
        msg = f"backend='ray' needs Ray: pip install 'distilabel_nb[ray]' ({error})"
        raise ImportError(msg) from error
    return RayBackend(**options)


register_backend("ray", _ray_backend)
