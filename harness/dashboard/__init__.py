"""The dashboard: a static site across runs (the history index and the merged reports kept),
opening on regressions, with a page per cell, two-run comparisons and the environments'
inventory. Imports: harness.result, harness.analysis and harness.report (whose comparison
tables and verdict words it reuses); imported by harness.commands.

``model`` decides what the site shows from the history and the reports; ``pairs`` compares
two runs with the existing analysis (paired where one rebuilt the other's environments);
``site`` renders it with jinja2 (autoescape) into files; ``svg`` draws the trend plots as
inline SVG; ``synthetic`` makes histories of the real result types for the benchmark and
the tests.
Its script and style sheet are ``templates/dashboard.js`` and ``templates/dashboard.css``,
inlined into each page: the site needs no server and asks for no URL.
"""
