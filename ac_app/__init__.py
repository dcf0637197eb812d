"""Application stratum: the Application Controller, strategies, resources and DC agent."""
