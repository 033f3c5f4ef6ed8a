"""The nightly run: evaluation (run.py), actions, worklist, messages, report, scheduler."""
