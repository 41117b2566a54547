"""Routing keys, the stack-affinity gate and the in-process replica API, without a Ray cluster."""
from __future__ import annotations

import asyncio
import base64
import json

from fastapi.testclient import TestClient

from scripts.eval_demo_model import DEFAULT_CHECKPOINT
from webui.serve.replica_api import ForwardedRequest, ReplicaApi, StackGate
from webui.serve.routing import key_of_body, routing_key


def test_key_follows_the_lora_stack_and_checkpoint_not_the_rest_of_the_prompt():
    base = routing_key({"prompt": "1girl <lora:cute dog:0.7>"})
    assert routing_key({"prompt": "a cat, <lora: cute dog :0.70>", "seed": 3}) == base
    assert routing_key({"prompt": "1girl <lora:cute dog:0.7:0.7>"}) == base  # unet weight defaults to te
    assert routing_key({"prompt": "1girl <lora:cute dog:0.71>"}) != base
    assert routing_key({"prompt": "1girl <lora:other:0.7>"}) != base
    assert routing_key({"prompt": "1girl <lora:cute dog:0.7>"}, "model-b") != base
    assert routing_key({"prompt": "x <lora:cute dog:0.7>", "override_settings": {"sd_model_checkpoint": "b"}}) \
        == routing_key({"prompt": "x <lora:cute dog:0.7>"}, "b")
    assert routing_key({"prompt": "1girl <lora:cute dog:0.7> <lora:ink:0>"}) == base  # zero weight: not merged


def test_hires_prompt_loras_are_part_of_the_key_only_with_a_hires_pass():
    plain = {"prompt": "x <lora:a:1>", "hr_prompt": "x <lora:b:1>"}
    assert routing_key(plain) == routing_key({"prompt": "x <lora:a:1>"})
    assert routing_key({**plain, "enable_hr": True}) != routing_key({"prompt": "x <lora:a:1>", "enable_hr": True})
    assert key_of_body(b"not json") == "" and key_of_body(b"[1]") == ""
    assert key_of_body(json.dumps(plain).encode()) == routing_key(plain)


def test_gate_runs_waiters_of_the_merged_stack_first_without_starving_others():
    async def scenario() -> list[str]:
        gate, order = StackGate(max_streak=3), []
        release = asyncio.Event()

        async def job(key: str) -> None:
            async with gate.turn(key):
                order.append(key)
                await release.wait()

        first = asyncio.create_task(job("a"))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(job(key)) for key in "babababa"]
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *rest)
        return order

    assert asyncio.run(scenario()) == list("aaabbbaab")  # runs of at most 3, then the oldest other stack


def test_replica_api_keeps_auth_and_a1111_error_bodies(tmp_path):
    argv = ["--ckpt-dir", str(DEFAULT_CHECKPOINT.parent), "--data-dir", str(tmp_path), "--device", "cpu",
            "--lora-dir", str(tmp_path / "Lora"), "--no-hashing", "--api-auth", "user:secret"]
    replica = ReplicaApi(argv)
    token = base64.b64encode(b"user:secret").decode()
    refused = replica.call_blocking(ForwardedRequest("GET", "/sdapi/v1/samplers"))
    samplers = replica.call_blocking(ForwardedRequest("GET", "/sdapi/v1/samplers", "",
                                                      [("authorization", f"Basic {token}")]))
    invalid = replica.call_blocking(ForwardedRequest("POST", "/sdapi/v1/txt2img", "", [
        ("authorization", f"Basic {token}"), ("content-type", "application/json")], b'{"steps": "many"}'))
    direct = TestClient(replica.app)  # the same app, over a plain HTTP client: the answers must not differ
    assert refused.status == 401 == direct.get("/sdapi/v1/samplers").status_code
    assert samplers.status == 200 and any(s["name"] == "Euler" for s in json.loads(samplers.body))
    assert invalid.status == 422
    assert json.loads(invalid.body) == direct.post("/sdapi/v1/txt2img", json={"steps": "many"},
                                                   auth=("user", "secret")).json()
