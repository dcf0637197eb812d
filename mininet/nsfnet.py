#!/usr/bin/env python3
"""NSFNET in Mininet: ``sudo python mininet/nsfnet.py [cso net flags]``, same as ``cso net``.

A thin script for people used to Mininet's examples; the builder is `cso.emulation.network`.
There is no ``__init__.py`` in this folder on purpose: it must not shadow the ``mininet`` package.
"""
import os
import sys

# Appended, not prepended: the repository root holds this `mininet/` folder, which must not
# win over the real mininet package (it does not: a folder without __init__.py never does).
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cso.emulation.cli import main  # noqa: E402  (needs the path above when not installed)

if __name__ == "__main__":
    sys.exit(main(["--topo", "nsfnet", *sys.argv[1:]]))
