"""Network stratum: the Service Controller (a Ryu application) and everything it owns."""
