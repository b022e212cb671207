"""The HTTP API: Flask blueprints for ``/api/v1`` (Serverservice-compatible), health and sandbox controls."""
