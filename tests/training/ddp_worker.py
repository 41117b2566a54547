"""Run under `accelerate launch`: train 3 steps and print this process's LoRA weight digest."""
from __future__ import annotations

import hashlib
import sys

from webui.training.config import config_from_dict
from webui.training.trainer import TrainingRun


def main(checkpoint: str, data: str, out: str) -> None:
    config = config_from_dict({"pretrained_model_name_or_path": checkpoint, "train_data_dir": data, "output_dir": out,
                               "resolution": "64", "max_train_steps": 3, "network_dim": 2, "learning_rate": 1e-2,
                               "seed": 1})
    run = TrainingRun(config, lambda: False, lambda progress: None, None)
    run.run(lambda path: None)
    weights = run.weights()
    digest = hashlib.sha256(b"".join(weights[k].numpy().tobytes() for k in sorted(weights))).hexdigest()
    print(f"rank {run.accelerator.process_index} digest {digest}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
