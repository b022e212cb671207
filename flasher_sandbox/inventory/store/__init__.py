"""Data access for the sandbox inventory: one module per resource, shared by the HTTP API and the seed loader.

Functions take an open SQLAlchemy ``Connection`` inside a transaction (``Database.read()``/``write()``),
raise :class:`flasher_sandbox.inventory.errors.ApiError` with the reference server's texts, and insert in bulk
(``executemany``) where a seed may bring thousands of rows.
"""
