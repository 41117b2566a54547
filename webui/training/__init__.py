"""LoRA training with kohya sd-scripts semantics: dataset, buckets, network, trainer, outputs and adapters."""
