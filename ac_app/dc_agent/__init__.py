"""The DC agent: its own program in every DC or edge host, reached by the AC over management."""
