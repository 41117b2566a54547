"""Read-only lists and refreshes: checkpoints, VAEs, samplers, schedulers, LoRAs, embeddings, scripts."""
from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from fastapi import APIRouter

from webui.networks.lora_file import read_metadata
from webui.processing.prompt_conds import embeddings_for
from webui.processing.runtime import Runtime
from webui.sampling.names import SAMPLER_NAMES, SCHEDULE_NAMES
from webui.scripts import script_info, script_titles

# Schedules that are computed from the model's own sigma table (A1111's need_inner_model) and default rho.
_INNER_MODEL = frozenset({"uniform", "sgm_uniform", "simple", "normal", "ddim", "beta"})
_DEFAULT_RHO = MappingProxyType({"karras": 7.0, "polyexponential": 1.0})


def _metadata(path) -> dict[str, Any]:
    # A1111 decodes the JSON-looking values of the safetensors header (ss_tag_frequency and friends).
    result: dict[str, Any] = {}
    for key, value in read_metadata(path).items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        result[key] = value
    return result


def add_model_routes(router: APIRouter, runtime: Runtime) -> None:
    registry = runtime.registry

    @router.get("/sd-models", summary="Checkpoints")
    def sd_models() -> list[dict[str, Any]]:
        models = []
        for info in registry.checkpoints():
            # Only hashes already computed are shown: hashing every file on a GET could take minutes.
            sidecar = info.sidecar()
            models.append({"title": registry.title(info), "model_name": info.name.rsplit(".", 1)[0].replace("/", "_"),
                           "hash": registry.cached_short_hash(info), "sha256": None, "filename": str(info.path),
                           "config": str(sidecar) if sidecar else None})
        return models

    @router.get("/sd-vae", summary="VAE files")
    def sd_vae() -> list[dict[str, Any]]:
        return [{"model_name": vae.name, "filename": str(vae.path)} for vae in registry.vaes()]

    @router.post("/refresh-checkpoints", summary="Rescan the checkpoint folder")
    def refresh_checkpoints() -> None:
        registry.refresh()

    @router.post("/refresh-vae", summary="Rescan the VAE folders")
    def refresh_vae() -> None:
        registry.refresh()

    @router.get("/samplers", summary="Samplers")
    def samplers() -> list[dict[str, Any]]:
        result = []
        for sampler in SAMPLER_NAMES:
            options: dict[str, Any] = {}
            if sampler.default_schedule:
                options["scheduler"] = sampler.default_schedule
            for flag, key in (("second_order", "second_order"), ("brownian", "brownian_noise"),
                              ("discard_penultimate_sigma", "discard_next_to_last_sigma"), ("uses_ensd", "uses_ensd")):
                if getattr(sampler, flag):
                    options[key] = True
            result.append({"name": sampler.name, "aliases": list(sampler.aliases), "options": options})
        return result

    @router.get("/schedulers", summary="Schedule types")
    def schedulers() -> list[dict[str, Any]]:
        return [{"name": s.name, "label": s.label, "aliases": list(s.aliases) or None,
                 "default_rho": _DEFAULT_RHO.get(s.name, -1), "need_inner_model": s.name in _INNER_MODEL}
                for s in SCHEDULE_NAMES]

    @router.get("/loras", summary="LoRA files (as of the last refresh)")
    def loras() -> list[dict[str, Any]]:
        # A file that cannot be used is still listed, with the reason under "error", and skipped by prompts.
        return [{"name": e.name, "alias": e.alias, "path": str(e.path), "metadata": _metadata(e.path),
                 **({"error": e.problem} if e.problem else {})}
                for e in runtime.loras.entries()]

    @router.post("/refresh-loras", summary="Rescan the LoRA folders")
    def refresh_loras() -> None:
        runtime.loras.scan()

    @router.get("/embeddings", summary="Textual-inversion embeddings for the loaded model")
    def embeddings() -> dict[str, Any]:
        loaded = runtime.models.loaded
        if loaded is None:  # which files fit depends on the model's text encoders
            return {"loaded": {}, "skipped": {}}
        database = embeddings_for(loaded.components, runtime.embeddings)
        found = {name: {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                        "shape": e.vector_width,
                        "vectors": e.vector_count}
                 for name, e in database.embeddings.items()}
        skipped = {name: {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": None,
                          "vectors": None, "reason": reason} for name, reason in database.skipped.items()}
        return {"loaded": found, "skipped": skipped}

    @router.get("/scripts", summary="Scripts usable with script_name / alwayson_scripts")
    def scripts() -> dict[str, list[str]]:
        names = [title.lower() for title in script_titles()]  # A1111 lists them lower-cased
        return {"txt2img": names, "img2img": list(names)}

    @router.get("/script-info", summary="Each script's arguments: label, default value and choices")
    def scripts_info() -> list[dict[str, Any]]:
        return script_info()
