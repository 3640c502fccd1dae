"""Benchmarks of training, inference and data building, side by side with plain transformers baselines.

`physlora bench train|infer|data` write one JSON result file each; docs/benchmarks.md explains the
fields, the formulas and the measured numbers.
"""
