"""The Serverservice (inventory) client and its models."""
