"""The ``cso`` command: one entry point, subcommands owned by each stratum."""
