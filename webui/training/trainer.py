"""The LoRA training loop (kohya train_network semantics), run through `accelerate` so DDP needs no new code."""
from __future__ import annotations

import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any, Callable, cast

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file

from webui.errors import UserInputError
from webui.models.hashing import sha256_of_file
from webui.networks.keymap import ModelNames
from webui.processing.model_calls import alphas_cumprod
from webui.training import outputs
from webui.training.batches import CaptionOptions, LatentSource, draw_flips, epoch_batches, process_caption
from webui.training.buckets import format_histogram
from webui.training.config import TrainingConfig
from webui.training.dataset import ImageItem, load_dataset
from webui.training.logs import LossHistory, ScalarEvents, write_csv, write_plot
from webui.training.network import LoRANetwork, NetworkShape
from webui.training.objective import denoising_target, min_snr_weight
from webui.training.progress import TrainingProgress, TrainingResult
from webui.training.setup import (
    TextEncoding,
    family_of,
    load_base,
    make_optimizer,
    make_scheduler,
    resolve_checkpoint,
    sdxl_time_ids,
    warmup_steps,
)
from webui.training.state import Position, load_state, save_state, state_dir

log = logging.getLogger(__name__)


class TrainingRun:
    """One run's objects (model, network, optimizer, data); `train()` below drives it, benchmarks time its steps."""

    def __init__(self, config: TrainingConfig, should_stop: Callable[[], bool],
                 on_progress: Callable[[TrainingProgress], None], sampler_factory) -> None:
        self.config = config
        self.should_stop = should_stop
        self.on_progress = on_progress
        self.progress = TrainingProgress()
        precision = config.mixed_precision
        if precision != "no" and not torch.cuda.is_available():
            log.warning("mixed_precision %s needs a GPU; training in fp32 on the CPU", precision)
            precision = "no"
        self.accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
        self.device = self.accelerator.device
        self.checkpoint = resolve_checkpoint(config.pretrained_model_name_or_path)
        self._report("reading the dataset")
        self.plan, options = load_dataset(
            Path(config.train_data_dir) if config.train_data_dir else None,
            Path(config.reg_data_dir) if config.reg_data_dir else None,
            Path(config.dataset_config) if config.dataset_config else None, config.bucket_settings(),
            config.caption_extension, should_stop)
        self.batch_size = int(options.get("batch_size", config.train_batch_size))
        self._report("loading the base model")
        self.components = load_base(self.checkpoint, self.device)
        self.family = family_of(self.components)
        self.v_pred = config.v_parameterization or self.components.architecture.prediction_type == "v_prediction"
        self.text = TextEncoding(self.components, self.family, config.clip_skip, self.device)
        self.unet: Any = cast(Any, self.components.unet)  # diffusers classes confuse mypy
        targets: dict[str, torch.nn.Module] = {"unet": self.unet}
        targets.update({e.slot: e.model for e in self.components.text_encoders})
        names = ModelNames.from_models(targets, self.family)
        conv_dim = config.network_arg("conv_dim")
        conv_alpha = config.network_arg("conv_alpha")
        self.shape = NetworkShape(config.network_dim, config.network_alpha, int(conv_dim) if conv_dim else None,
                                  float(conv_alpha) if conv_alpha else None)
        torch.manual_seed(config.seed if config.seed is not None else 0)
        self.network = LoRANetwork(targets, names, self.shape, train_unet=not config.network_train_text_encoder_only,
                                   train_text_encoder=not config.network_train_unet_only)
        if config.network_weights:
            self.network.load_kohya_state_dict(_read_weights(Path(config.network_weights)), config.network_weights)
        self.network.to(self.device)
        self.network.apply_to()
        self.train_te = len(self.network.text_encoder_loras) > 0
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            self.unet.train()
        lr = config.learning_rate
        groups = self.network.param_groups(config.unet_lr if config.unet_lr is not None else lr,
                                           config.text_encoder_lr if config.text_encoder_lr is not None else lr)
        self.batches_per_epoch = self.plan.batches_per_epoch(self.batch_size)
        # With N processes each walks every N-th batch, so an epoch takes N times fewer optimizer steps.
        per_process = math.ceil(self.batches_per_epoch / self.accelerator.num_processes)
        per_epoch = math.ceil(per_process / config.gradient_accumulation_steps)
        if config.max_train_epochs:
            self.max_steps = per_epoch * config.max_train_epochs
        else:
            self.max_steps = config.max_train_steps
        self.epochs = math.ceil(self.max_steps / per_epoch)
        log.info("dataset:\n%s\nbuckets (images x repeats per epoch):\n%s\ntraining %d steps (%d epochs)",
                 self.plan.summary(self.batch_size, config.gradient_accumulation_steps, self.epochs),
                 format_histogram(self.plan.bucket_counts()), self.max_steps, self.epochs)
        optimizer = make_optimizer(config, groups)
        scheduler = make_scheduler(config, optimizer, self.max_steps)
        # The network is not wrapped in DDP: its forward is never called (the hooks run inside the UNet/CLIP), so
        # gradients are averaged across processes explicitly in `_clip`; equal seeds give equal initial weights.
        self.optimizer, self.scheduler = self.accelerator.prepare(optimizer, scheduler)
        self.acp = alphas_cumprod(self.components.architecture.scheduler_config()).to(self.device)
        # Per-process noise (process 0 keeps the plain seed); the LoRA init above used the same seed everywhere.
        self.generator = torch.Generator().manual_seed((config.seed or 0) + 7919 * self.accelerator.process_index)
        self.history = LossHistory(window=max(1, per_epoch))
        self.progress.history = self.history
        self.position = Position()
        self.session_id = uuid.uuid4().hex
        self.started_at = time.time()
        self.output_dir = Path(config.output_dir)
        self.sampler = sampler_factory(self) if sampler_factory and config.sample_prompts else None
        self.events: ScalarEvents | None = None  # TensorBoard, with --logging_dir (kohya's --log_with default)
        if config.resume:
            self._resume(Path(config.resume))

    def _report(self, phase: str, message: str = "") -> None:
        self.progress.phase, self.progress.message = phase, message
        self.on_progress(self.progress)

    def _resume(self, folder: Path) -> None:
        payload, self.position, history, _ = load_state(folder)
        self.network.load_state_dict(payload["network"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.generator.set_state(payload["generator"])
        torch.set_rng_state(payload["cpu_rng"])
        if history:
            self.history = LossHistory.from_state(history)
            self.progress.history = self.history
        log.info("resumed at step %d (epoch %d)", self.position.global_step, self.position.epoch + 1)

    def metadata(self) -> dict[str, str]:
        base_hash = sha256_of_file(self.checkpoint) if self.checkpoint.stat().st_size < 16 << 30 else None
        return outputs.training_metadata(
            self.config, self.plan, family=self.family, v_pred=self.v_pred, session_id=self.session_id,
            started_at=self.started_at, batches_per_epoch=self.batches_per_epoch, epochs=self.epochs,
            max_steps=self.max_steps, warmup_steps=warmup_steps(self.config, self.max_steps),
            base_model=self.checkpoint, base_hash=base_hash, conv_dim=self.shape.conv_dim,
            conv_alpha=self.shape.conv_alpha)

    def weights(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        return self.network.kohya_state_dict(dtype)

    def encode_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        vae: Any = self.components.vae
        with torch.no_grad():
            latents = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode()
            if getattr(vae.config, "shift_factor", None):
                latents = latents - vae.config.shift_factor
            return (latents * vae.config.scaling_factor).float().cpu()

    def loss(self, batch: list[ImageItem], latents_source: LatentSource) -> torch.Tensor:
        config = self.config
        gen = self.generator
        flips = draw_flips(batch, config.flip_aug, gen)
        latents = torch.stack([latents_source.latents(item, flip) for item, flip in zip(batch, flips, strict=True)])
        if config.cache_text_encoder_outputs:  # kohya: cached outputs mean no shuffle and no dropout
            captions = [item.caption for item in batch]
        else:
            captions = [process_caption(item.caption, _caption_options(config, item), gen) for item in batch]
        noise = torch.randn(latents.shape, generator=gen)
        if config.noise_offset:
            noise = noise + config.noise_offset * torch.randn((*latents.shape[:2], 1, 1), generator=gen)
        timesteps = torch.randint(0, len(self.acp), (len(batch),), generator=gen)
        latents, noise, timesteps = latents.to(self.device), noise.to(self.device), timesteps.to(self.device)
        acp = self.acp[timesteps].view(-1, 1, 1, 1)
        noisy = acp.sqrt() * latents + (1 - acp).sqrt() * noise
        with self.accelerator.autocast():
            if config.cache_text_encoder_outputs:
                context, pooled = self.text.cached(captions)
            else:
                with torch.set_grad_enabled(self.train_te):
                    context, pooled = self.text(captions)
            extra = None
            if self.family == "sdxl":
                size = batch[0].bucket
                extra = {"text_embeds": pooled, "time_ids": sdxl_time_ids(size, (0, 0), size, len(batch),
                                                                           self.device)}
            prediction = self.unet(noisy, timesteps, encoder_hidden_states=context,
                                              added_cond_kwargs=extra).sample
        target = denoising_target(latents, noise, acp, self.v_pred)
        loss = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        if config.min_snr_gamma:
            loss = loss * min_snr_weight(acp.view(-1) / (1 - acp.view(-1)), config.min_snr_gamma, self.v_pred)
        weights = torch.tensor([config.prior_loss_weight if item.subset.is_reg else 1.0 for item in batch],
                               device=loss.device)
        return (loss * weights).mean()


    # ---- the loop -------------------------------------------------------------------------------------------

    def run(self, on_saved: Callable[[Path], None]) -> TrainingResult:
        config, progress, position = self.config, self.progress, self.position
        progress.total_steps, progress.total_epochs = self.max_steps, self.epochs
        progress.step, progress.epoch = position.global_step, position.epoch
        latents = LatentSource(self.encode_latents, config.flip_aug, config.cache_latents,
                               config.cache_latents_to_disk)
        latents.fill_cache(self.plan.items, self.should_stop,
                           lambda done, total: self._report("caching latents", f"{done}/{total}"))
        if config.sample_at_first and position.global_step == 0:
            self._sample(epoch=None)
        metadata = self.metadata()
        saved: list[Path] = []
        entries = self.plan.epoch_entries()
        accum = config.gradient_accumulation_steps
        params = [p for p in self.network.parameters() if p.requires_grad]
        stopped = False
        progress.started = time.monotonic()
        first_step = position.global_step
        if config.logging_dir and self.accelerator.is_main_process:
            self.events = ScalarEvents(Path(config.logging_dir) / config.output_name, self.history, self.train_te)
        while position.epoch < self.epochs and position.global_step < self.max_steps and not stopped:
            batches = epoch_batches(entries, self.batch_size, config.seed or 0, position.epoch)
            batches = batches[self.accelerator.process_index::self.accelerator.num_processes]
            while position.next_batch < len(batches) and position.global_step < self.max_steps:
                if self.should_stop():
                    stopped = True
                    break
                group = batches[position.next_batch:position.next_batch + accum]
                total = 0.0
                for batch in group:
                    loss = self.loss(batch, latents) / len(group)
                    self.accelerator.backward(loss)
                    total += float(loss.detach())
                self._clip(params)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                position.next_batch += len(group)
                position.global_step += 1
                self._after_step(total, first_step)
                step = position.global_step
                if config.save_every_n_steps and step % config.save_every_n_steps == 0 and step < self.max_steps:
                    saved.append(self._save(outputs.epoch_file_name(config.output_name, step=step), metadata,
                                            None, on_saved))
                if config.sample_every_n_steps and not config.sample_every_n_epochs and \
                        step % config.sample_every_n_steps == 0:
                    self._sample(epoch=None)
            if stopped:
                break
            position.epoch += 1
            position.next_batch = 0
            self._write_logs()
            epoch = position.epoch
            if config.save_every_n_epochs and epoch % config.save_every_n_epochs == 0 and epoch < self.epochs:
                saved.append(self._save(outputs.epoch_file_name(config.output_name, epoch), metadata, epoch,
                                        on_saved))
                if config.save_state:
                    self._save_state(state_dir(self.output_dir, config.output_name, epoch))
            if config.sample_every_n_epochs and epoch % config.sample_every_n_epochs == 0:
                self._sample(epoch=epoch)
        self._write_logs()
        if stopped:
            folder = self._save_state(state_dir(self.output_dir, config.output_name))
            self._report("stopped", f"stopped at step {position.global_step}; resume with --resume {folder}")
            return TrainingResult(None, saved, True, folder, self.history, self.plan)
        final = self._save(outputs.epoch_file_name(config.output_name), metadata, position.epoch, on_saved)
        saved.append(final)
        state = self._save_state(state_dir(self.output_dir, config.output_name)) if config.save_state else None
        self._report("done", f"saved {final}")
        return TrainingResult(final, saved, False, state, self.history, self.plan)

    def _clip(self, params: list[torch.nn.Parameter]) -> None:
        """Unscale (fp16), then one fused norm over all LoRA grads; accelerate's own clip walks them one by one."""
        if self.accelerator.num_processes > 1:
            for param in params:
                if param.grad is not None:
                    param.grad = self.accelerator.reduce(param.grad, reduction="mean")
        self.accelerator.unscale_gradients()
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm, foreach=True)

    def _after_step(self, loss: float, first_step: int) -> None:
        lrs = self.scheduler.get_last_lr()
        progress, position = self.progress, self.position
        average = self.history.add(position.global_step, position.epoch + 1, loss, lrs[0], lrs[-1])
        progress.step, progress.epoch = position.global_step, position.epoch + 1
        progress.loss, progress.average_loss, progress.lr = loss, average, lrs[0]
        elapsed = time.monotonic() - progress.started
        done = position.global_step - first_step
        progress.message = f"{done / elapsed:.2f} it/s" if elapsed > 0 else ""
        self._report("training", progress.message)
        if self.events is not None:
            self.events.add(position.global_step, position.epoch + 1, loss, average, lrs[0], lrs[-1])
        if not math.isfinite(loss):
            raise UserInputError(f"loss became {loss} at step {position.global_step}: lower the learning rate "
                                 "(or check the images); nothing was saved from this step")

    def _log_dir(self) -> Path:
        return Path(self.config.logging_dir) if self.config.logging_dir else \
            self.output_dir / "log" / self.config.output_name

    def _write_logs(self) -> None:
        if self.accelerator.is_main_process and self.history.steps:
            try:
                write_csv(self.history, self._log_dir() / "loss.csv")
                write_plot(self.history, self._log_dir() / "loss.png")
                if self.events is not None:
                    self.events.flush()
            except OSError as error:  # the logs are a view; the LoRA itself must still get its chance to save
                log.warning("could not write the training log in %s: %s", self._log_dir(), error)

    def _save(self, name: str, metadata: dict[str, str], epoch: int | None, on_saved) -> Path:
        path = self.output_dir / name
        if not self.accelerator.is_main_process:
            return path
        dtype = outputs.SAVE_DTYPES[self.config.save_precision]
        self._report("saving", name)
        try:
            outputs.save_lora(path, self.weights(dtype), metadata, epoch=epoch, step=self.position.global_step)
            preview = self.progress.samples[-1] if self.progress.samples else None
            outputs.write_card_files(path, self.trigger_word(), preview, self.family)
        except OSError as error:
            raise UserInputError(f"could not write {name} ({error.strerror or error}); is the disk full? No half "
                                 "file was left; free some space and train again") from error
        self.progress.saved.append(path)
        on_saved(path)
        return path

    def _save_state(self, folder: Path) -> Path:
        if self.accelerator.is_main_process:
            save_state(folder, self.network, self.optimizer, self.scheduler,
                       self.generator, self.position, self.history.to_state(), self.config.to_dict())
        return folder

    def _sample(self, epoch: int | None) -> None:
        if self.sampler is None or not self.accelerator.is_main_process:
            return
        renderer, prompts = self.sampler
        self._report("sampling")
        paths = renderer.render(prompts, self.weights(torch.float32), self.output_dir / "sample",
                                self.config.output_name, epoch=epoch, step=self.position.global_step)
        self.progress.samples.extend(paths)

    def trigger_word(self) -> str:
        """`--trigger_word`, else the most common first caption tag (the word users put first)."""
        if self.config.trigger_word:
            return self.config.trigger_word
        firsts: dict[str, int] = {}
        for item in self.plan.train_items:
            head = item.caption.split(",")[0].strip()
            if head:
                firsts[head] = firsts.get(head, 0) + 1
        return max(firsts, key=lambda k: firsts[k]) if firsts else ""


def _caption_options(config: TrainingConfig, item: ImageItem) -> CaptionOptions:
    subset = item.subset
    return CaptionOptions(
        shuffle_caption=config.shuffle_caption if subset.shuffle_caption is None else subset.shuffle_caption,
        keep_tokens=config.keep_tokens if subset.keep_tokens is None else subset.keep_tokens,
        caption_dropout_rate=(config.caption_dropout_rate if subset.caption_dropout_rate is None
                              else subset.caption_dropout_rate))


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserInputError(f"network_weights {path} does not exist")
    try:
        return load_file(str(path))
    except Exception as error:  # noqa: BLE001 - any reader failure is the same bad file to the user
        raise UserInputError(f"network_weights {path.name} is not a readable .safetensors LoRA: {error}") from error


def train(config: TrainingConfig, *, should_stop: Callable[[], bool] = lambda: False,
          on_progress: Callable[[TrainingProgress], None] = lambda progress: None,
          on_saved: Callable[[Path], None] = lambda path: None, sampler_factory=None) -> TrainingResult:
    """Train one LoRA. `should_stop` is polled between steps (a stop saves a resumable state); `sampler_factory`
    builds (renderer, prompts) for sample images; `on_saved` runs after each LoRA file is written."""
    config.check()
    run = TrainingRun(config, should_stop, on_progress, sampler_factory)
    try:
        return run.run(on_saved)
    finally:
        run.network.remove()
        if run.events is not None:
            run.events.close()
        if run.sampler is not None:
            run.sampler[0].close()
