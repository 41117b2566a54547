"""networks layer."""
