"""The HTTP API: routers per resource, dependencies for the user, the database and Temporal."""
