"""Storage errors: one base class; the edges translate them (HTTP 404/409/422, CLI exit 2)."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error storage raises on purpose."""


class NotFound(StorageError):
    """The record asked for does not exist."""


class Conflict(StorageError):
    """The change contradicts what is stored (a state transition not allowed, a duplicate)."""


class InvalidRecord(StorageError):
    """A record given to storage is malformed; `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
