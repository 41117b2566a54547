"""LoRA training: dataset preparation, tagging, caption editing and the trainer."""
