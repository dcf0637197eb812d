"""Topology files (JSON) and the loader shared by both strata."""
