"""Adapters that run other libraries' steps on distilabel_nb's engine.

Each adapter sits in the graph layer beside ``distilabel_nb.steps``: it gives the engine
the same step protocol our own steps have, and imports its library only when the user
has already imported it.
"""

__all__: list[str] = []
