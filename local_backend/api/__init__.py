"""The HTTP side of the local openEO backend: the openeo-driver app, request hooks, users, rate limits, validation."""
