"""TaskScope's tests (a package, so that tests/engine never shadows the real engine package)."""
