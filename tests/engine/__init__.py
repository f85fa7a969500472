"""Engine tests: no Qt here."""
