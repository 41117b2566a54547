"""LoRA training with kohya sd-scripts semantics: dataset preparation, tagging, caption editing, trainer, outputs."""
