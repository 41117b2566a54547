"""`python -m webui.networks.bake`: forwards to `webui.models.bake`, where the bake CLI lives (see below why)."""
# The issue and the docs name this command, but baking needs the checkpoint loader and the LDM converter, which
# live in webui/models (layer 4) — a layer the networks package must never import. So this file imports nothing
# when imported as a module; only when run as a script does it start the real CLI by name, one layer up.
from __future__ import annotations

if __name__ == "__main__":
    import runpy

    from webui.offline import enforce_offline

    enforce_offline()  # before diffusers/transformers are imported by the bake module
    runpy.run_module("webui.models.bake", run_name="__main__", alter_sys=True)
