"""The run report: Markdown and self-contained HTML with plots, built only from the files of a run folder.

The entry point is `physlora.report.build.write_report`. This package must not import torch or the
model, training or evaluation packages, so that a report can be rebuilt on any machine.
"""
