"""Inference: sampling (NUTS through nutpie/PyMC/numpyro, the Laplace approximation), the compiled-model cache,
diagnostics, netCDF files, simulated records.

Layers import only downward: core < inference < analysis < reporting < cases < drivers (``tests/test_layers.py``).
"""
