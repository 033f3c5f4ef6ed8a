"""The edges of credo: HTTP API, command line, scheduler and the use cases they share."""
