"""Data pipeline: read the sources, clean, tag topics, deduplicate, split and audit.

`physlora.data.build.build_dataset` is the entry point; `physlora.data.records.Record` is the row format.
"""
