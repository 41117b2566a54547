"""`accelerate launch --multi_gpu` with two CPU processes: different noise per process, the same weights after."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.training.conftest import make_star_dataset
from webui.paths import REPO_ROOT


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tmp_path, demo_checkpoint):
    data = make_star_dataset(tmp_path / "img", count=2, repeats=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
         "tests.training.ddp_worker", str(demo_checkpoint), str(data), str(tmp_path / "out")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    digests = dict(re.findall(r"rank (\d) digest (\w+)", completed.stdout))
    assert set(digests) == {"0", "1"}, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert digests["0"] == digests["1"]
