"""Extra-network tag parsing and removal (reference section 9), plus the forgiving whitespace/name rules."""
from __future__ import annotations

import dataclasses

import pytest

from webui.prompts import ExtraNetworkTag, extract_extra_networks


def one(text: str) -> ExtraNetworkTag:
    _, tags = extract_extra_networks(text)
    assert len(tags) == 1
    return tags[0]


def test_tags_are_removed_and_surroundings_stay() -> None:
    text, tags = extract_extra_networks("a cat, <lora:x:0.8>, smiling")
    assert text == "a cat, , smiling"
    assert [t.name for t in tags] == ["x"]


@pytest.mark.parametrize(
    ("tag", "te", "unet", "dyn"),
    [
        ("<lora:x>", 1.0, 1.0, None),
        ("<lora:x:0.8>", 0.8, 0.8, None),
        ("<lora:x:1:0.3>", 1.0, 0.3, None),
        ("<lora:x:1:0.3:16>", 1.0, 0.3, 16),
        ("<lora:x:te=0.5>", 0.5, 0.5, None),
        ("<lora:x:unet=0.2>", 1.0, 0.2, None),
        ("<lora:x:0.9:unet=0.2:dyn=4>", 0.9, 0.2, 4),
        ("<lora:x:0.9:te=0.4>", 0.4, 0.4, None),  # te= is applied before unet defaults to te
        ("<lora:x:-1>", -1.0, -1.0, None),
        ("<lora:x:abc>", 1.0, 1.0, None),  # unreadable number: default, not an error
    ],
)
def test_lora_argument_mapping(tag: str, te: float, unet: float, dyn: int | None) -> None:
    parsed = one(tag)
    assert parsed.kind == "lora"
    assert parsed.name == "x"
    assert (parsed.te_weight, parsed.unet_weight, parsed.dyn) == (te, unet, dyn)
    assert parsed.raw == tag


def test_lyco_is_lora_and_hypernet_has_its_own_kind() -> None:
    assert one("<lyco:y:0.5>").kind == "lora"
    hyper = one("<hypernet:h:0.3>")
    assert (hyper.kind, hyper.name, hyper.te_weight) == ("hypernet", "h", 0.3)
    other = one("<wildcard:thing:2>")
    assert (other.kind, other.name) == ("wildcard", "thing")


def test_forgiving_whitespace_and_names() -> None:
    cjk = one("<lora: 模型文件名: 0.7 >")
    assert (cjk.name, cjk.te_weight, cjk.unet_weight) == ("模型文件名", 0.7, 0.7)
    spaced = one("<lora:cute dog_20230708214731-000017:1>")
    assert spaced.name == "cute dog_20230708214731-000017"
    dotted = one("<lora:style.v1.2-final : 0.6 : 0.4 >")
    assert (dotted.name, dotted.te_weight, dotted.unet_weight) == ("style.v1.2-final", 0.6, 0.4)


def test_named_and_positional_args_are_kept_for_extensions() -> None:
    tag = one("<lora:x:1:lbw=MIDD:a=b=c>")
    assert tag.named_arg("lbw") == "MIDD"
    assert tag.named_arg("start") is None
    assert "a=b=c" in tag.positional


def test_tags_in_edits_are_taken_before_scheduling() -> None:
    text, tags = extract_extra_networks("[<lora:a:1>:<lora:b:1>:10]")
    assert [t.name for t in tags] == ["a", "b"]
    assert text == "[::10]"


def test_not_tags() -> None:
    for text in ["<lora>", "<:x>", "a < b > c", "<lora:>", "<lo ra:x>"]:
        stripped, tags = extract_extra_networks(text)
        assert tags == [] and stripped == text


def test_tag_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        one("<lora:x>").name = "y"  # type: ignore[misc]
