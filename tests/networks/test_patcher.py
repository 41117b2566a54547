"""The patcher: exact restore, failure atomicity, stack switching, partial re-merge, single rounding."""
from __future__ import annotations

import copy
import signal

import pytest
import torch

from tests.networks.tiny import kohya_lora, lora_targets, param_hash, tiny_models
from webui.networks import LoraPatcher, ModelNames, parse_lora
from webui.networks import patcher as patcher_module


@pytest.fixture()
def world():
    models = tiny_models(sdxl=True)
    names = ModelNames.from_models(models)
    layers = lora_targets(names, (torch.nn.Linear, torch.nn.Conv2d))
    loras = {
        "a": parse_lora("a", kohya_lora(names, layers, rank=4, alpha=2.0, seed=1), {}, names),
        "b": parse_lora("b", kohya_lora(names, layers[::3], rank=2, alpha=1.0, seed=2), {}, names),
        # IA3 on a few layers makes the stack weight-dependent (order-sensitive) as well
        "c": parse_lora("c", {f"{names.kohya_name(t, n)}.weight": torch.rand(names.modules[(t, n)].weight.shape[0])
                              for t, n in layers[:5] if names.modules[(t, n)].weight.dim() == 2}, {}, names),
    }
    return models, names, layers, loras


def test_apply_then_restore_is_bit_identical(world) -> None:
    models, _, layers, loras = world
    before = param_hash(models)
    patcher = LoraPatcher(models)
    patcher.apply([(loras["a"], 0.9, 1.1), (loras["b"], -0.5, 0.3), (loras["c"], 1.0, 1.0)])
    assert param_hash(models) != before
    assert patcher.restore() == len(layers)
    assert param_hash(models) == before
    assert patcher.backup_bytes() == 0


@pytest.mark.parametrize("fail_at", [1, 7, 40])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_merge_restores_every_layer(world, monkeypatch, fail_at: int, error: type) -> None:
    models, _, _, loras = world
    pristine = param_hash(models)
    patcher = LoraPatcher(models)
    patcher.apply([(loras["b"], 1.0, 1.0)])  # an old stack is in place when the new one fails
    calls = {"n": 0}
    real_write = LoraPatcher._write

    def failing_write(self, target, *args):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise error("injected")
        real_write(self, target, *args)

    monkeypatch.setattr(LoraPatcher, "_write", failing_write)
    with pytest.raises(error):
        patcher.apply([(loras["a"], 1.0, 1.0), (loras["c"], 0.5, 0.5)])
    monkeypatch.undo()
    assert param_hash(models) == pristine  # restored, not half-applied
    assert not patcher.patched_layers and patcher.active == ()
    patcher.apply([(loras["a"], 1.0, 1.0)])  # and the patcher still works afterwards
    patcher.restore()
    assert param_hash(models) == pristine


@pytest.mark.parametrize("where", ["backup copy", "factor gathering"])
def test_interrupt_before_a_layer_is_written_restores_every_layer(world, monkeypatch, where: str) -> None:
    models, _, _, loras = world
    pristine = param_hash(models)
    patcher = LoraPatcher(models)
    patcher.apply([(loras["b"], 1.0, 1.0)])  # `a` covers more layers: merged and fresh ones are both in play
    calls = {"n": 0}
    if where == "backup copy":
        real = LoraPatcher._copy

        def failing(self, tensor):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return real(self, tensor)

        monkeypatch.setattr(LoraPatcher, "_copy", failing)
    else:
        real_sum = patcher_module._low_rank_sum

        def failing(pending, device):
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return real_sum(pending, device)

        monkeypatch.setattr(patcher_module, "_low_rank_sum", failing)
    with pytest.raises(KeyboardInterrupt):
        patcher.apply([(loras["a"], 0.5, 0.5), (loras["b"], 1.0, 1.0)])
    monkeypatch.undo()
    assert calls["n"] >= 3 and param_hash(models) == pristine and not patcher.patched_layers


def test_asynchronous_interrupts_at_random_moments_never_leave_a_half_applied_model(world) -> None:
    """A real SIGALRM raising KeyboardInterrupt wherever the interpreter happens to be during `apply`."""
    models, _, _, loras = world
    pristine = param_hash(models)
    stack = [(loras["a"], 0.9, 0.7), (loras["b"], 0.4, -0.3)]
    reference = copy.deepcopy(models)
    LoraPatcher(reference).apply(stack)
    applied = param_hash(reference)
    patcher = LoraPatcher(models)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    interrupted = 0
    try:
        for delay_ms in (0.3, 0.7, 1.5, 3, 5, 8, 12, 20, 30, 50):
            try:
                signal.setitimer(signal.ITIMER_REAL, delay_ms / 1000)
                try:
                    patcher.apply(stack)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                interrupted += 1
                # Either nothing is applied, or (interrupt after the last write) the whole stack, consistently.
                state = param_hash(models)
                assert state in (pristine, applied)
                assert (state == applied) == bool(patcher.patched_layers)
            patcher.restore()
            assert param_hash(models) == pristine
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert interrupted > 0  # at least one alarm landed inside `apply`


def test_context_manager_restores_when_the_body_raises(world) -> None:
    models, _, _, loras = world
    before = param_hash(models)
    patcher = LoraPatcher(models)
    with pytest.raises(ValueError):
        with patcher.patched([(loras["a"], 1.0, 1.0)]) as report:
            assert report.applied == ["a"] and param_hash(models) != before
            raise ValueError("inference failed")
    assert param_hash(models) == before
    with LoraPatcher(models) as scoped:
        scoped.apply([(loras["b"], 1.0, 1.0)])
    assert param_hash(models) == before


def test_switching_stacks_equals_applying_each_to_a_fresh_model(world) -> None:
    models, _, _, loras = world
    fresh = copy.deepcopy(models)
    first = [(loras["a"], 1.0, 0.8), (loras["c"], 0.3, 0.3)]
    second = [(loras["b"], 0.5, -0.7), (loras["a"], 0.2, 0.4)]
    patcher = LoraPatcher(models)
    patcher.apply(first)
    patcher.apply(second)
    reference = copy.deepcopy(fresh)
    LoraPatcher(reference).apply(second)
    assert param_hash(models) == param_hash(reference)
    patcher.apply(first)
    reference = copy.deepcopy(fresh)
    LoraPatcher(reference).apply(first)
    assert param_hash(models) == param_hash(reference)


def test_only_changed_layers_are_rewritten(world) -> None:
    models, _, layers, loras = world
    patcher = LoraPatcher(models)
    assert patcher.apply([(loras["a"], 1.0, 1.0)]).layers_written == len(layers)
    assert patcher.apply([(loras["a"], 1.0, 1.0)]).layers_written == 0  # same stack: nothing to do
    b_layers = set(loras["b"].modules)
    b_unet = {k for k in b_layers if k[0] == "unet"}
    report = patcher.apply([(loras["a"], 1.0, 1.0), (loras["b"], 0.0, 0.5)])  # te weight 0: TE layers untouched
    assert report.layers_written == len(b_unet) and report.layers_restored == 0
    report = patcher.apply([(loras["b"], 1.0, 1.0)])  # layers only `a` touched go back to pristine
    assert report.layers_restored == len(layers) - len(b_layers)
    assert report.layers_written == len(b_layers)
    assert patcher.patched_layers == b_layers


def test_zero_weight_touches_nothing_and_backup_equals_touched_bytes(world) -> None:
    models, _, _, loras = world
    before = param_hash(models)
    patcher = LoraPatcher(models)
    report = patcher.apply([(loras["a"], 0.0, 0.0)])
    assert report.layers_written == 0 and param_hash(models) == before and patcher.backup_bytes() == 0
    patcher.apply([(loras["a"], 0.0, 1.0)])
    touched = [patcher.models[t].get_submodule(n).weight for t, n in loras["a"].modules if t == "unet"]
    assert patcher.backup_bytes() == sum(w.numel() * w.element_size() for w in touched)
    for target in ("text_encoder", "text_encoder_2"):
        assert all(key[0] != target for key in patcher.patched_layers)


def test_fp16_model_is_rounded_once_from_fp32(world) -> None:
    models, names, layers, loras = world
    half = {k: copy.deepcopy(m).half() for k, m in models.items()}
    pristine = {k: {n: p.detach().clone() for n, p in m.named_parameters()} for k, m in half.items()}
    stack = [(loras["a"], 1.0, 0.7), (loras["b"], -0.4, 0.9)]
    LoraPatcher(half).apply(stack)
    for target, name in layers[:12]:
        lora_a, lora_b = loras["a"].modules[(target, name)], loras["b"].modules.get((target, name))
        w0 = pristine[target][name + ".weight"].float()
        m_a = 1.0 if target != "unet" else 0.7
        expected = w0 + m_a * lora_a.dense(w0)
        if lora_b is not None:
            expected = expected + (-0.4 if target != "unet" else 0.9) * lora_b.dense(w0)
        actual = half[target].get_submodule(name).weight.detach()
        # one rounding of the fp32 sum: the fp16 rounding of the exact-order sum, or its neighbour where the
        # fp32 summation order (one concatenated matmul) lands on the other side of a rounding boundary
        rounded = expected.half()
        assert bool(((actual == rounded) | (actual == torch.nextafter(rounded, actual))).all())
        assert int((actual != rounded).sum()) <= max(2, actual.numel() // 500)


@pytest.mark.gpu
@pytest.mark.parametrize("backup_device", [None, "cpu"])
def test_cuda_fp16_apply_restore_with_device_or_host_backups(world, backup_device) -> None:
    models, _, _, loras = world
    cuda = {k: copy.deepcopy(m).half().cuda() for k, m in models.items()}
    before = param_hash({k: copy.deepcopy(m).cpu() for k, m in cuda.items()})
    patcher = LoraPatcher(cuda, backup_device=backup_device)
    patcher.apply([(loras["a"], 1.0, 0.5), (loras["c"], 0.5, 0.5)])
    expected = "cuda" if backup_device is None else "cpu"
    assert all(b.weight.device.type == expected for b in patcher._backups.values())
    patcher.restore()
    assert param_hash({k: copy.deepcopy(m).cpu() for k, m in cuda.items()}) == before


def test_kept_backups_make_a_re_apply_copy_free_and_bit_identical(world, monkeypatch) -> None:
    models, _, layers, loras = world
    pristine = param_hash(models)
    patcher = LoraPatcher(models, keep_backups=True)
    stack = [(loras["a"], 0.9, 1.1), (loras["c"], 1.0, 1.0)]
    patcher.apply(stack)
    merged = param_hash(models)
    kept = patcher.backup_bytes()
    assert patcher.restore() == len(layers)
    assert param_hash(models) == pristine
    # The pristine copies stay (their memory is the cost of the option) ...
    assert patcher.backup_bytes() == kept > 0
    copies = {"n": 0}
    real_copy = LoraPatcher._copy

    def counting_copy(self, tensor):
        copies["n"] += 1
        return real_copy(self, tensor)

    monkeypatch.setattr(LoraPatcher, "_copy", counting_copy)
    # ... so applying again copies nothing and lands on exactly the same weights.
    patcher.apply(stack)
    assert copies["n"] == 0
    assert param_hash(models) == merged
    # A switch and a second restore still come back bit-identical, and a restore of a clean model writes nothing.
    patcher.apply([(loras["b"], 0.5, 0.5)])
    assert patcher.restore() == len(loras["b"].modules)
    assert param_hash(models) == pristine
    assert patcher.restore() == 0 and copies["n"] == 0


def test_without_keep_backups_a_restore_frees_the_copies(world) -> None:
    models, _, _, loras = world
    patcher = LoraPatcher(models)
    patcher.apply([(loras["a"], 1.0, 1.0)])
    assert patcher.backup_bytes() > 0
    patcher.restore()
    assert patcher.backup_bytes() == 0
def test_stack_changes_count_re_merges_not_reuses(world) -> None:
    _, _, _, loras = world
    patcher = LoraPatcher(world[0])
    first = [(loras["a"], 0.8, 0.8)]
    patcher.apply(first)
    patcher.apply(first)  # the same stack again: nothing rewritten, no re-merge
    assert patcher.stack_changes == 1
    patcher.apply([(loras["a"], 0.8, 0.7)])
    patcher.apply([])  # back to pristine weights is a change too
    patcher.apply([])
    assert patcher.stack_changes == 3
