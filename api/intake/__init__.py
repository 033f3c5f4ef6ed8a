"""Ledger records coming in: their schemas (schemas.py) and file imports (importer.py)."""
