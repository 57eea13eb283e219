"""Drivers: the command line and the functions behind its commands (run, report, scenario, sensitivity, check, init, the README table).

Layers import only downward: core < inference < analysis < reporting < cases < drivers (``tests/test_layers.py``).
"""
