"""Registry domain: plain values and rules (names, frameworks, extensions, version tags); no I/O."""
