"""Dataset -> tiny ONNX tagger -> CLI training on the demo model -> epoch files that load in our engine and in
diffusers, carry kohya's metadata (with the tagger's tags), and change the picture."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from scripts.eval_demo_model import demo_runtime
from tests.helpers.tiny_taggers import write_tiny_tagger
from tests.training.conftest import make_star_dataset
from webui.networks.keymap import ModelNames
from webui.networks.lora_file import file_hash, read_lora
from webui.processing.request import Txt2ImgRequest, make_request
from webui.processing.txt2img import txt2img
from webui.training.captioning import caption_folder, make_captioner
from webui.training.interrogate import Interrogator
from webui.training.tagger import TagSettings
from webui.training.train_network import main

NAME = "star lora"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_checkpoint):
    root = tmp_path_factory.mktemp("train")
    data = make_star_dataset(root / "img", extras=True)
    write_tiny_tagger(root / "tagger" / "tiny-wd14")
    captioner = make_captioner(Interrogator(root / "tagger", root / "BLIP"), "tiny-wd14", TagSettings(trigger="zkstar"))
    report = caption_folder(data, captioner)
    # the four stars are tagged; the corrupt image and the latin-1 caption are listed, not overwritten
    assert report.written == 4 and sorted(name for name, _ in report.failed) == ["broken.png", "latin.png"]
    prompts = root / "prompts.txt"
    prompts.write_text("# comment\nzkstar --n blurry --w 64 --h 64 --d 3 --l 5 --s 4\n", encoding="utf-8")
    out = root / "Lora"
    code = main(["--pretrained_model_name_or_path", str(demo_checkpoint), "--train_data_dir", str(data),
                 "--output_dir", str(out), "--output_name", NAME, "--resolution", "64", "--network_dim", "4",
                 "--network_alpha", "2", "--learning_rate", "5e-3", "--max_train_epochs", "2",
                 "--save_every_n_epochs", "1", "--train_batch_size", "2", "--cache_latents", "--seed", "1",
                 "--sample_prompts", str(prompts), "--sample_every_n_epochs", "1", "--sample_sampler", "euler_a"])
    assert code == 0
    return root, out


def test_outputs_are_named_and_described_like_kohyas(trained):
    _, out = trained
    epoch_file, final = out / f"{NAME}-000001.safetensors", out / f"{NAME}.safetensors"
    assert epoch_file.is_file() and final.is_file()
    assert not list(out.glob("*.partial*"))
    with safe_open(str(final), "pt") as handle:
        metadata = handle.metadata()
        keys = list(handle.keys())
        dtypes = {handle.get_tensor(k).dtype for k in keys}
    assert dtypes == {torch.float16}
    assert all(k.startswith(("lora_unet_", "lora_te_")) and k.endswith((".lora_down.weight", ".lora_up.weight",
                                                                         ".alpha")) for k in keys)
    assert metadata["ss_network_dim"] == "4" and metadata["ss_network_alpha"] == "2.0"
    assert metadata["ss_output_name"] == NAME and metadata["ss_base_model_version"] == "sd_v1"
    assert metadata["ss_num_train_images"] == str(4 * 2)  # the corrupt image and the latin-1 caption are skipped
    frequency = json.loads(metadata["ss_tag_frequency"])["2_zkstar"]
    assert frequency["zkstar"] == 4  # the trigger word the tagger put first
    assert frequency["simple background"] == frequency["^_^"] == frequency["long hair"] == 4  # the tagger's tags
    assert "a yellow star on a navy background" not in frequency  # the hand-written captions were replaced
    assert json.loads(metadata["ss_dataset_dirs"])["2_zkstar"]["n_repeats"] == 2
    assert json.loads(metadata["ss_bucket_info"])["buckets"]["0"]["resolution"] == [64, 64]
    assert metadata["ss_epoch"] == "2" and metadata["sshs_model_hash"] == file_hash(final)
    assert len(metadata["sshs_legacy_hash"]) == 8
    sidecar = json.loads(final.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["activation text"] == "zkstar"
    assert final.with_suffix(".preview.png").is_file()
    samples = sorted(p.name for p in (out / "sample").glob("*.png"))
    assert len(samples) == 2 and samples[0].startswith(f"{NAME}_e000001_00_") and samples[0].endswith("_3.png")
    log = (out / "log" / NAME / "loss.csv").read_text(encoding="utf-8").splitlines()
    assert log[0] == "step,epoch,loss/current,loss/average,loss/epoch_average,lr/unet,lr/textencoder"
    assert len(log) == 1 + 8
    assert (out / "log" / NAME / "loss.png").is_file()


def test_epoch_files_load_in_our_engine_and_change_the_picture(trained, demo_checkpoint):
    root, out = trained
    runtime = demo_runtime(demo_checkpoint, root / "runtime")
    runtime = type(runtime)(**{**runtime.__dict__, "loras": type(runtime.loras)([out])})
    model = runtime.models.load()
    for path in (out / f"{NAME}-000001.safetensors", out / f"{NAME}.safetensors"):
        lora = read_lora(path, model.lora_names())
        assert lora.modules and not lora.unmatched_keys and not lora.unsupported_keys

    def image(prompt: str) -> np.ndarray:
        request = make_request(Txt2ImgRequest, {"prompt": prompt, "steps": 6, "width": 64, "height": 64, "seed": 5,
                                                "sampler_name": "Euler", "save_images": False, "save_grid": False})
        return np.asarray(txt2img(request, runtime).images[0], dtype=float)

    base = image("zkstar")
    with_lora = image(f"zkstar <lora:{NAME}:1>")
    assert np.abs(with_lora - base).mean() > 1.0
    assert np.array_equal(image(f"zkstar <lora:{NAME}:0>"), base)


def test_epoch_file_loads_in_diffusers_like_ours(trained, demo_checkpoint):
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from webui.conditioning.tokenizer import load_clip_tokenizer
    from webui.models.device import device_config
    from webui.models.loader import load_components
    from webui.networks import LoraPatcher

    _, out = trained
    path = out / f"{NAME}-000001.safetensors"
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500])
    ours = load_components(demo_checkpoint, device_config(device="cpu"))
    context = torch.randn(1, 77, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = ours.unet(x, t, encoder_hidden_states=context).sample
    targets = {"unet": ours.unet, "text_encoder": ours.text_encoders[0].model}
    names = ModelNames.from_models(targets, "sd1")
    LoraPatcher(targets, "sd1").apply([(read_lora(path, names), 1.0, 1.0)], strict=True)
    with torch.no_grad():
        ours_out = ours.unet(x, t, encoder_hidden_states=context).sample
    theirs = load_components(demo_checkpoint, device_config(device="cpu"))
    pipe = StableDiffusionPipeline(vae=theirs.vae, text_encoder=theirs.text_encoders[0].model,
                                   tokenizer=load_clip_tokenizer(True), unet=theirs.unet, scheduler=DDIMScheduler(),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(path))
    with torch.no_grad():
        theirs_out = pipe.unet(x, t, encoder_hidden_states=context).sample
    assert (ours_out - base).abs().max() > 1e-3
    torch.testing.assert_close(theirs_out, ours_out, atol=2e-3, rtol=1e-2)
