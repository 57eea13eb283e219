"""Reporting: figures (plots/) and the HTML report.

Layers import only downward: core < inference < analysis < reporting < cases < drivers (``tests/test_layers.py``).
"""
