"""Prompt work (parsing, weighing, tokenising, encoding) stops on Interrupt within a second and has a time budget
per request, so one huge prompt cannot hold the only worker; normal prompts encode exactly as before."""
from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from webui.conditioning import PromptEncoder, TextEncoderSlot
from webui.processing.jobs import JobInterrupted, JobState
from webui.processing.prompt_budget import PromptBudget, PromptBudgetExceeded
from webui.processing.prompt_conds import plan_prompt
from webui.prompts import limits

LIMIT_S = 1.5  # acceptance is 1 s; the shared test machine adds scheduling noise
SMALL = {"width": 64, "height": 64, "steps": 2, "sampler_name": "Euler", "seed": 5}
# ~32 KB of distinct AND parts: thousands of texts to weigh, tokenise and encode (several seconds on this CPU).
HUGE = " AND ".join(f"(word{i}:1.1) thing{i}" for i in range(1400))[:limits.MAX_PROMPT_CHARS]


@pytest.fixture(scope="module")
def clip_l() -> CLIPTextModel:
    torch.manual_seed(7)
    config = CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407)
    return CLIPTextModel(config).eval()


def _wait_until_encoding(runtime, seconds: float) -> JobState:
    """The running job, once it has spent `seconds` on prompt work (and not yet reached the sampler)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = runtime.queue.current
        if job is not None and job.prompt_budget.used() >= seconds:
            return job
        time.sleep(0.01)
    raise AssertionError("the job never started encoding its prompt")


def test_interrupt_while_a_huge_prompt_is_encoded_stops_the_job_within_a_second(client, robust_runtime):
    answers: list = []
    worker = threading.Thread(
        target=lambda: answers.append(client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": HUGE})))
    worker.start()
    job = _wait_until_encoding(robust_runtime, 0.5)
    assert job.sampling_steps == 0, "the prompt was encoded before the test could interrupt it"
    pressed = time.monotonic()
    assert client.post("/sdapi/v1/interrupt").status_code == 200
    worker.join(120)
    stopped = time.monotonic() - pressed
    assert answers and answers[0].status_code == 200, answers[0].text[:300] if answers else "no answer"
    assert json.loads(answers[0].json()["info"])["interrupted"] is True
    assert answers[0].json()["images"] == []
    assert stopped <= LIMIT_S, f"the job ran {stopped:.2f}s after /interrupt"


def test_the_budget_refuses_a_prompt_that_takes_too_long_and_the_queue_moves_on(client, monkeypatch):
    monkeypatch.setattr(limits, "PROMPT_TIME_BUDGET_S", 0.3)
    started = time.monotonic()
    answer = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": HUGE})
    elapsed = time.monotonic() - started
    assert answer.status_code == 422, answer.text[:300]
    detail = answer.json()["detail"]
    assert "PROMPT_TIME_BUDGET_S" in detail and "0.3 s" in detail, detail
    assert elapsed < 0.3 + LIMIT_S
    # The next request, a normal prompt under the default budget, is served at once.
    monkeypatch.undo()
    normal = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": "a red circle"})
    assert normal.status_code == 200 and len(normal.json()["images"]) == 1


def test_budget_counts_only_prompt_work_and_names_itself():
    budget = PromptBudget(0.05)
    time.sleep(0.06)  # time outside prompt work (e.g. sampling between two passes) does not count
    budget.check()
    with budget.counting():
        deadline = time.monotonic() + 5
        while budget.used() <= 0.05 and time.monotonic() < deadline:
            pass
        try:
            budget.check()
        except PromptBudgetExceeded as error:
            assert "PROMPT_TIME_BUDGET_S" in str(error) and "0.05 s" in str(error)
        else:
            raise AssertionError("the budget did not trip")
    assert budget.spent > 0.05


def test_a_normal_prompt_encodes_the_same_with_checks_and_within_budget(clip_l):
    encoder = PromptEncoder([TextEncoderSlot.sd1(clip_l)])
    text = "(masterpiece:1.2), 1girl, [red:blue:0.5] " * 12  # several chunks
    plain = PromptEncoder([TextEncoderSlot.sd1(clip_l)]).encode([text]).context
    job = JobState()
    calls: list[None] = []

    def check() -> None:
        calls.append(None)
        job.check_prompt_work()

    with job.prompt_budget.counting():
        checked = encoder.encode([text], check=check).context
    assert torch.equal(plain, checked)
    assert len(calls) >= 3  # asked before weighing, and before each chunk
    assert job.prompt_budget.spent < limits.PROMPT_TIME_BUDGET_S / 10  # far inside the budget, even on a busy CPU


def test_plan_and_encode_stop_on_interrupt(clip_l):
    job = JobState()
    job.interrupt()
    for work in (lambda: plan_prompt("a AND b", 20, check=job.check_prompt_work),
                 lambda: PromptEncoder([TextEncoderSlot.sd1(clip_l)]).encode(["a cat"], check=job.check_prompt_work)):
        try:
            work()
        except JobInterrupted:
            continue
        raise AssertionError("prompt work ignored Interrupt")


def test_each_generation_of_a_script_gets_the_whole_budget(robust_runtime, monkeypatch):
    # Scripts (X/Y/Z plot, prompts from file) run many generations on one job: each must start with a full budget.
    from webui.processing.request import Txt2ImgRequest
    from webui.processing.txt2img import txt2img

    monkeypatch.setattr(limits, "PROMPT_TIME_BUDGET_S", 5.0)
    job = JobState()
    job.prompt_budget.spent = 4.99  # as if earlier cells of a grid had used it up
    result = txt2img(Txt2ImgRequest(**{**SMALL, "prompt": "a red circle, " * 20}), robust_runtime, job)
    assert len(result.images) == 1
    assert job.prompt_budget.spent < 4.0  # restarted from zero, not from the 4.99 s of earlier cells
