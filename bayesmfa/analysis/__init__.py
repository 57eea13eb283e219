"""Analysis of fits: balance checks, summaries and the derived Dataset, scenarios, sensitivity sweeps,
power-scaling, criticism, record checks, calibration, executors.

Layers import only downward: core < inference < analysis < reporting < cases < drivers (``tests/test_layers.py``).
"""
