"""processing layer."""
