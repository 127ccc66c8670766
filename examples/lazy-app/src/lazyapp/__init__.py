"""An application that embeds text, with the load path many real ones have: importing it is
cheap, and the model (torch, sentence-transformers, the weights) loads on first use.

``load()`` is what the harness calls for ``entry:lazyapp:load``; what it returns has
``encode``, as the application's own code would use it.
"""

from lazyapp.provider import LazyEmbedder


def load() -> LazyEmbedder:
    """The application's embedding provider, as it creates it at start-up: nothing loaded yet."""
    return LazyEmbedder()
