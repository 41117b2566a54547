"""conditioning layer."""
