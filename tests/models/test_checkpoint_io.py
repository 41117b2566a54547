"""Model files: safetensors validation, truncated/corrupt files, and pickles that try to run code."""
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from webui.errors import ModelFileError
from webui.models.checkpoint_io import load_tensors, read_safetensors_header, tensor_shapes


def _write(path: Path) -> Path:
    save_file({"a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(5)}, str(path),
              metadata={"ss_output_name": "x"})
    return path


def test_header_gives_shapes_and_metadata(tmp_path):
    header = read_safetensors_header(_write(tmp_path / "m.safetensors"))
    assert header.shapes == {"a.weight": (3, 4), "b": (5,)}
    assert header.metadata == {"ss_output_name": "x"}
    assert load_tensors(tmp_path / "m.safetensors")["a.weight"][2, 3].item() == 11


def test_truncated_safetensors_is_refused_with_a_clear_message(tmp_path):
    path = _write(tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(ModelFileError, match="truncated"):
        load_tensors(path)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 3, b"\xff" * 64, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"])
def test_garbage_safetensors_is_refused(tmp_path, payload):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(ModelFileError):
        tensor_shapes(path)


class _RunsCode:
    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_that_wants_to_run_code_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = _RunsCode()
    evil.marker = marker
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"w": evil}}, handle)
    with pytest.raises(ModelFileError, match="refused"):
        load_tensors(path)
    assert not marker.exists()


def test_plain_tensor_ckpt_loads_through_weights_only(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2, 2)}, "global_step": 5}, path)
    assert torch.equal(load_tensors(path)["w"], torch.ones(2, 2))
    assert tensor_shapes(path) == {"w": (2, 2)}
