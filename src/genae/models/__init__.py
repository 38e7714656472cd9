"""Models: every model family, the interface they share (base) and the registry of their names."""
