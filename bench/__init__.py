"""Benchmarks of the generation core against diffusers (run from the repo root)."""
