"""Stable Diffusion WebUI built on diffusers, with LoRA at its heart."""
