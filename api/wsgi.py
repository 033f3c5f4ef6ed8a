"""The WSGI entry point for production servers: `gunicorn -w 2 -k sync 'api.wsgi:app'`.

Settings come from config.toml (or CREDO_CONFIG) and CREDO_* variables, read once per worker.
Use sync workers, one per core: each process owns its durable_rules engine.
"""

from api.app import create_app

app = create_app()
