"""Parts of the demo model's training recipe: the word probe's loss and the per-timestep loss weights."""
from __future__ import annotations

import argparse

import torch

from scripts.demo_vocab import WordProbe
from scripts.train_demo_model import Phase, loss_weights
from webui.models.architectures import load_architecture
from webui.processing.model_calls import alphas_cumprod


def test_the_word_probe_reads_known_words_and_the_first_end_token_only():
    rows, eos = 6, 5
    probe = WordProbe(4, rows, eos)
    ids = torch.tensor([[0, 1, 9, 2, eos, eos, eos], [0, 3, eos, eos, eos, eos, eos]])  # 9: an unseen distractor
    context = torch.randn(2, 7, 4)
    kept = torch.tensor([[1, 1, 0, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    expected = torch.nn.functional.cross_entropy(probe.read(context[kept]), ids[kept])
    assert torch.allclose(probe.loss(context, ids), expected)
    # What the padding holds does not matter; what a word's output holds does.
    changed_padding, changed_word = context.clone(), context.clone()
    changed_padding[:, 5:] += 10.0
    changed_word[0, 3] += 10.0
    assert torch.allclose(probe.loss(changed_padding, ids), expected)
    assert not torch.allclose(probe.loss(changed_word, ids), expected)


def test_the_x0_floor_lifts_only_the_high_noise_steps():
    ac = alphas_cumprod(load_architecture("sd1").scheduler_config())
    snr = ac / (1 - ac)
    args = argparse.Namespace(prediction_type="epsilon", min_snr=5.0)
    plain = loss_weights(snr, Phase("stage3", 1, 1e-3, 1, 0), args)
    floored = loss_weights(snr, Phase("finetune", 1, 1e-3, 1, 0, x0_floor=0.05), args)
    assert torch.allclose(plain * snr, torch.clamp(snr, max=5.0))  # kohya's min-SNR in x0 terms
    assert torch.all(floored * snr >= 0.05 - 1e-6) and torch.all(floored >= plain)
    assert torch.equal(floored[snr > 0.05], plain[snr > 0.05]) and floored[-1] > 10 * plain[-1]
    v_args = argparse.Namespace(prediction_type="v_prediction", min_snr=5.0)
    v_floored = loss_weights(snr, Phase("finetune", 1, 1e-3, 1, 0, x0_floor=0.05), v_args)
    assert torch.all(v_floored * (snr + 1) >= 0.05 - 1e-6)
