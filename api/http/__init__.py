"""The HTTP API: one module per resource with its schemas, plus errors, auth and docs."""
