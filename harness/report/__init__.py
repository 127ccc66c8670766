"""Exporters: tables, console, plots, the HTML page (jinja2 templates) and the CI summary, one per module.
Imports: harness.result and harness.analysis; nothing imports it but harness.commands.
"""
