"""Ray Serve adapter: many replicas, each with its own Runtime, behind the one A1111 API (optional extra)."""
