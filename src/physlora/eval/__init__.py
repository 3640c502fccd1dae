"""Evaluation of a run's base and adapted model: loss, multiple-choice accuracy, generated answers.

The entry point is `physlora.eval.runner.evaluate_run`, which writes RUN/eval.json and
RUN/predictions.jsonl (fields in docs/run-folder.md).
"""
