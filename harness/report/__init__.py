"""Renderers: tables, console, plots, the HTML page (jinja2 templates), the CI summary, the
verdict banner all three open or close with, and the facts and formatting they share.
Imports: harness.result, harness.analysis; imported by harness.commands.

("Renderer", not "exporter": an export is the backend export of harness.measure.export.)
"""
