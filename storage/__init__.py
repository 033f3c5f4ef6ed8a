"""credo's storage: peewee models and queries over SQLite (default) or PostgreSQL.

Storage turns rows into engine dataclasses and back; it may import engine, never api.
"""
