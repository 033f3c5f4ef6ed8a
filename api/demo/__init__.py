"""`credo demo`: a synthetic portfolio (portfolio.py) loaded and evaluated (run.py)."""
