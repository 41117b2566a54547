"""`python -m webui.networks.extract`: forwards to `webui.models.extract_lora`, where loading checkpoints is allowed."""
# Extraction has to load two checkpoints, which is the models layer's job (layer 4); the networks package must
# never import it. The SVD and kohya naming live here in the networks layer (lora_extract.py); this file imports
# nothing when imported as a module and only starts the CLI by name, one layer up, when run as a script.
from __future__ import annotations

if __name__ == "__main__":
    import runpy

    from webui.offline import enforce_offline

    enforce_offline()  # before diffusers/transformers are imported by the extraction module
    runpy.run_module("webui.models.extract_lora", run_name="__main__", alter_sys=True)
