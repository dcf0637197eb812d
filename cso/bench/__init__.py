"""``cso bench``: benchmarks of the PCE, provisioning, restoration, load and the simulator."""
