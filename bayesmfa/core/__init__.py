"""The core: the system, its graph, priors, records and their likelihoods, the balanced model and its
fused kernel, input checks, result files.

Layers import only downward: core < inference < analysis < reporting < cases < drivers (``tests/test_layers.py``).
"""
