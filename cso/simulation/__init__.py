"""Simulation of the CSO experiment (CSO draft section 9) with the controllers' own code."""
