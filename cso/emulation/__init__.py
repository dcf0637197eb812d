"""Emulation: a topology's Mininet network, the processes run on it, checks from outside."""
