"""Text-encoder key maps: HF-layout CLIP-L and OpenCLIP layout (ViT-H, bigG) <-> transformers CLIP text models."""
from __future__ import annotations

from webui.models.ldm_keymap import SPLIT3, TRANSPOSE, KeyMap, ModuleMap, Part

# transformers 5 flattened CLIPTextModel (no `text_model.` level); the projection variant still nests it.
_INNER_PREFIX = {"CLIPTextModel": "", "CLIPTextModelWithProjection": "text_model."}

OPEN_CLIP_LAYER_PARTS = (
    Part("ln_1", "layer_norm1"),
    Part("ln_2", "layer_norm2"),
    Part("mlp.c_fc", "mlp.fc1"),
    Part("mlp.c_proj", "mlp.fc2"),
    Part("attn.out_proj", "self_attn.out_proj"),
    Part("attn.in_proj_weight", tuple(f"self_attn.{n}_proj.weight" for n in "qkv"), SPLIT3),  # type: ignore[arg-type]
    Part("attn.in_proj_bias", tuple(f"self_attn.{n}_proj.bias" for n in "qkv"), SPLIT3),  # type: ignore[arg-type]
)


def inner_prefix(class_name: str) -> str:
    """Where the CLIP text transformer sits inside the transformers model's state dict."""
    try:
        return _INNER_PREFIX[class_name]
    except KeyError:
        raise ValueError(f"unsupported text encoder class: {class_name}") from None


def hf_clip_keymap(class_name: str, num_layers: int) -> KeyMap:
    """CLIP stored as a transformers model under `.transformer.` (SD1 / SDXL CLIP-L): `text_model.` <-> inner prefix.

    Keys are relative to the `...transformer.` LDM prefix, so they start with `text_model.`.
    """
    inner = inner_prefix(class_name)
    maps = [
        ModuleMap("text_model.embeddings.token_embedding", f"{inner}embeddings.token_embedding"),
        ModuleMap("text_model.embeddings.position_embedding", f"{inner}embeddings.position_embedding"),
        ModuleMap("text_model.final_layer_norm", f"{inner}final_layer_norm"),
    ]
    maps += [ModuleMap(f"text_model.encoder.layers.{i}", f"{inner}encoder.layers.{i}") for i in range(num_layers)]
    if class_name == "CLIPTextModelWithProjection":
        maps.append(ModuleMap("text_projection", "text_projection"))
    return KeyMap(maps)


def open_clip_keymap(class_name: str, num_layers: int) -> KeyMap:
    """OpenCLIP text tower (keys relative to `...model.`), e.g. `transformer.resblocks.N.attn.in_proj_weight`.

    The `text_projection` maps only when the class has a projection layer; otherwise it stays unmapped and
    the converter keeps it as an extra so the file still round-trips.
    """
    inner = inner_prefix(class_name)
    maps = [
        ModuleMap("token_embedding", f"{inner}embeddings.token_embedding"),
        ModuleMap("positional_embedding", f"{inner}embeddings.position_embedding.weight", exact=True),
        ModuleMap("ln_final", f"{inner}final_layer_norm"),
    ]
    maps += [
        ModuleMap(f"transformer.resblocks.{i}", f"{inner}encoder.layers.{i}", OPEN_CLIP_LAYER_PARTS)
        for i in range(num_layers)
    ]
    if class_name == "CLIPTextModelWithProjection":
        maps.append(ModuleMap("text_projection", "text_projection.weight", transform=TRANSPOSE, exact=True))
    return KeyMap(maps)
