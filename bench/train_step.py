"""LoRA training step: our trainer vs a minimal diffusers + PEFT loop on the same model, batch, size and rank."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from bench.common import RssSampler, ensure_checkpoint, machine_summary, median  # noqa: E402
from webui.conditioning.tokenizer import load_clip_tokenizer  # noqa: E402
from webui.processing.model_calls import alphas_cumprod  # noqa: E402
from webui.training.batches import LatentSource  # noqa: E402
from webui.training.config import config_from_dict  # noqa: E402
from webui.training.setup import load_base  # noqa: E402
from webui.training.trainer import TrainingRun  # noqa: E402

DEMO = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def dataset(folder: Path, size: int, count: int) -> Path:
    subset = folder / "1_bench"
    subset.mkdir(parents=True)
    for index in range(count):
        Image.new("RGB", (size, size), (40 * index % 255, 120, 200)).save(subset / f"{index}.png")
        (subset / f"{index}.txt").write_text("bench, a picture", encoding="utf-8")
    return folder


class Ours:
    """Our trainer's own objects; one step = its loss, backward, clip, optimizer and scheduler step."""

    def __init__(self, checkpoint: Path, data: Path, size: int, batch: int, rank: int) -> None:
        config = config_from_dict({"pretrained_model_name_or_path": str(checkpoint), "train_data_dir": str(data),
                                   "output_dir": str(data / "out"), "resolution": str(size), "network_dim": rank,
                                   "network_alpha": rank, "learning_rate": 1e-4, "train_batch_size": batch,
                                   "max_train_steps": 10_000, "seed": 1, "cache_latents": True,
                                   "mixed_precision": "fp16" if torch.cuda.is_available() else "no"})
        self.run = TrainingRun(config, lambda: False, lambda progress: None, None)
        self.latents = LatentSource(self.run.encode_latents, False, True, False)
        self.latents.fill_cache(self.run.plan.items, lambda: False)
        self.batch = self.run.plan.epoch_entries()[:batch]
        self.params = [p for p in self.run.network.parameters() if p.requires_grad]

    def step(self) -> None:
        run = self.run
        run.accelerator.backward(run.loss(self.batch, self.latents))
        run._clip(self.params)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)


class Peft:
    """The reference: diffusers UNet + transformers CLIP with PEFT LoRA adapters on the same layers, plain AdamW."""

    def __init__(self, checkpoint: Path, size: int, batch: int, rank: int) -> None:
        from peft import LoraConfig

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.device = device
        components: Any = load_base(checkpoint, device)  # diffusers classes confuse mypy
        self.unet: Any = components.unet
        self.text: Any = components.text_encoders[0].model
        self.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=UNET_TARGETS))
        self.text.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=TE_TARGETS))
        self.params = [p for m in (self.unet, self.text) for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4)
        self.acp = alphas_cumprod(components.architecture.scheduler_config()).to(device)
        scale = 2 ** (len(components.vae.config.block_out_channels) - 1)
        channels = components.unet.config.in_channels
        with torch.no_grad():
            pixels = torch.rand(batch, 3, size, size, device=device) * 2 - 1
            self.latents = components.vae.encode(pixels).latent_dist.mode() * components.vae.config.scaling_factor
        assert self.latents.shape[1:] == (channels, size // scale, size // scale)
        self.ids = load_clip_tokenizer(True)(["bench, a picture"] * batch, padding="max_length", max_length=77,
                                             truncation=True, return_tensors="pt").input_ids.to(device)
        self.autocast = torch.autocast("cuda", torch.float16) if torch.cuda.is_available() else None

    def step(self) -> None:
        noise = torch.randn_like(self.latents)
        t = torch.randint(0, len(self.acp), (len(self.latents),), device=self.device)
        acp = self.acp[t].view(-1, 1, 1, 1)
        noisy = acp.sqrt() * self.latents + (1 - acp).sqrt() * noise
        with self.autocast if self.autocast is not None else torch.enable_grad():
            context = self.text(self.ids).last_hidden_state
            prediction = self.unet(noisy, t, encoder_hidden_states=context).sample
        F.mse_loss(prediction.float(), noise.float()).backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def measure(step, warmup: int, steps: int) -> tuple[list[float], float]:
    """Step times (s) and the extra memory (MiB) the steps needed: CUDA peak allocation, else peak RSS growth."""
    for _ in range(warmup):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    with RssSampler() as rss:
        for _ in range(steps):
            started = time.perf_counter()
            step()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    if torch.cuda.is_available():
        return times, (torch.cuda.max_memory_allocated() - base) / 2**20
    return times, rss.peak_mib - rss.start_mib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=("demo", "sd15"), default="demo",
                        help="demo: the bundled 64 px model (CPU); sd15: an SD1.5-shaped random model (GPU)")
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of --steps each")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = DEMO if args.model == "demo" else ensure_checkpoint()
    size = args.resolution or (64 if args.model == "demo" else 512)
    print(machine_summary())
    with tempfile.TemporaryDirectory() as scratch:
        ours = Ours(checkpoint, dataset(Path(scratch), size, args.batch), size, args.batch, args.rank)
        peft = Peft(checkpoint, size, args.batch, args.rank)
        results: dict[str, tuple[list[float], list[float]]] = {"ours": ([], []), "peft": ([], [])}
        for round_no in range(args.rounds):
            for name, runner in (("ours", ours), ("peft", peft)) if round_no % 2 == 0 else \
                    (("peft", peft), ("ours", ours)):
                times, memory = measure(runner.step, 2, args.steps)
                results[name][0].extend(times)
                results[name][1].append(memory)
    for name, (step_times, memories) in results.items():
        print(f"{name:5s} median step {median(step_times) * 1000:8.1f} ms   peak extra memory {max(memories):8.1f} MiB")
    ratio = median(results["ours"][0]) / median(results["peft"][0])
    memory_ratio = max(results["ours"][1]) / max(max(results["peft"][1]), 1e-6)
    print(f"{args.model} {size}px batch {args.batch} rank {args.rank}: step time ratio ours/peft = {ratio:.3f}, "
          f"peak memory ratio = {memory_ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
