"""Start-up switches that keep the Hugging Face libraries (and Gradio's telemetry) off the network."""
from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
}


def enforce_offline() -> None:
    """Call before importing diffusers/transformers/gradio: they read these once, at import."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
