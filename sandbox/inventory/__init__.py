"""A Serverservice-compatible inventory server on SQLite."""
