"""Module-scoped pytest fixtures for tests that generate with the bundled demo model."""
from __future__ import annotations

from typing import Callable

import pytest
import torch

from scripts.eval_demo_model import DEFAULT_CHECKPOINT, demo_runtime
from webui.processing.runtime import Runtime


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The demo model is tiny: one thread is as fast, and far faster than two when other jobs share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def demo_runtime_fixture(folder: str) -> Callable:
    """A module-scoped `runtime` fixture on the demo checkpoint, with its data in a fresh temporary folder."""

    @pytest.fixture(scope="module")
    def runtime(tmp_path_factory) -> Runtime:
        assert DEFAULT_CHECKPOINT.is_file(), "the demo checkpoint must be committed under models/Stable-diffusion/"
        return demo_runtime(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp(folder))

    return runtime
