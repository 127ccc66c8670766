"""One module per command-line verb: ``configure(parser)`` and ``run(args) -> int``."""
