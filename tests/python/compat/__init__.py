"""flamepy 0.6.0 (unchanged, from PyPI) against the real flame-object-cache binary."""
