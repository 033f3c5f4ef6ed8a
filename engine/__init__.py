"""credo's pure decision engine: facts, rule files, expression compiler, durable_rules runtime.

Nothing in this package imports Flask, peewee, APScheduler, storage or api (a test enforces it).
"""
