"""CLI: `python -m webui.training.train_network` with kohya sd-scripts' flags and `--config_file` TOML."""
from __future__ import annotations

import atexit
import logging
import shutil
import signal
import sys
import threading

from tqdm import tqdm

from webui.errors import UserInputError
from webui.training.config import TrainingConfig, config_from_args
from webui.training.trainer import TrainingProgress, train


def cli_sampler_factory(config: TrainingConfig):
    """Sample images through a runtime of our own over the checkpoint's folder (the CLI has no app runtime)."""
    def build(run):
        import tempfile
        from pathlib import Path

        from webui.models.device import device_config
        from webui.paths import Folders
        from webui.processing.runtime import build_runtime
        from webui.training.samples import SampleRenderer, read_prompt_file

        scratch = Path(tempfile.mkdtemp(prefix="lora-train-"))
        atexit.register(shutil.rmtree, scratch, True)  # the sample runtime's scratch data goes with the process
        folders = Folders(checkpoints=run.checkpoint.parent, vae=scratch / "VAE", lora=(scratch / "Lora",),
                          embeddings=scratch / "embeddings", outputs=scratch / "outputs", data=scratch)
        runtime = build_runtime(folders, device_config(device=str(run.device)), hashing=False)
        prompts = read_prompt_file(Path(config.sample_prompts or ""))
        return SampleRenderer(runtime, run.checkpoint, config.sample_sampler, config.clip_skip), prompts
    return build


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    # Ctrl+C asks for a clean stop: the current step finishes and a resumable state is written.
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    bar = tqdm(total=0, unit="step", dynamic_ncols=True)

    def show(progress: TrainingProgress) -> None:
        if bar.total != progress.total_steps:
            bar.total = progress.total_steps
        bar.n = progress.step
        avr = f"{progress.average_loss:.4f}" if progress.average_loss is not None else "-"
        bar.set_description(f"epoch {progress.epoch}/{progress.total_epochs} {progress.phase}")
        bar.set_postfix_str(f"avr_loss={avr} {progress.message}", refresh=True)

    try:
        config = config_from_args(argv)
        result = train(config, should_stop=stop.is_set, on_progress=show,
                       sampler_factory=cli_sampler_factory(config) if config.sample_prompts else None)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    if result.stopped:
        print(f"stopped; resume with --resume {result.state}")
        return 1
    for path in result.saved:
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
