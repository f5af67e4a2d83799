"""The cache graph as a picture: node texts (``views``) and the SVG (``render``), shared by
the notebook widget, ``pipeline.draw()`` and ``distilabel-nb graph``."""
