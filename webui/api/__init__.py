"""A1111-compatible REST API at /sdapi/v1: a thin adapter over webui.processing (app.py --api / --nowebui)."""
