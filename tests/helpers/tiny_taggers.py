"""Tiny WD14-shaped taggers and BLIP-shaped captioners built with the real onnx / transformers APIs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (name, category, weights on the mean B, G, R in 0..1, bias): logits -> sigmoid, as the real taggers' last layer.
TINY_TAGS = (
    ("general", 9, (0, 0, 0), 2.0),
    ("sensitive", 9, (0, 0, 0), -1.0),
    ("questionable", 9, (0, 0, 0), -3.0),
    ("explicit", 9, (0, 0, 0), -4.0),
    ("red", 0, (-5, -5, 10), -4.0),
    ("green", 0, (-5, 10, -5), -4.0),
    ("blue", 0, (10, -5, -5), -4.0),
    ("long_hair", 0, (0, 0, 0), 0.0),  # always 0.5
    ("^_^", 0, (0, 0, 0), 2.0),  # always ~0.88
    ("simple_background", 0, (0, 0, 0), 3.0),  # always ~0.95
    ("hatsune_miku", 4, (0, 0, 0), 1.0),  # always ~0.73: in with a character threshold of 0.7, out at 0.85
)


def write_tiny_tagger(folder: Path, size: int = 32) -> Path:
    """`model.onnx` (NHWC BGR 0..255 in, sigmoid of a linear map of the mean colour out) + `selected_tags.csv`."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = np.array([tag[2] for tag in TINY_TAGS], np.float32).T  # [3 (BGR), tags]
    bias = np.array([tag[3] for tag in TINY_TAGS], np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["input_1:0"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], ["unit"]),
        helper.make_node("MatMul", ["unit", "weights"], ["linear"]),
        helper.make_node("Add", ["linear", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_wd14",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", len(TINY_TAGS)])],
        initializer=[numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
                     numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    rows = ["tag_id,name,category,count"] + [f"{index},{name},{category},{1000 - index}"
                                             for index, (name, category, _, _) in enumerate(TINY_TAGS)]
    (folder / "selected_tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


TINY_WORDS = ("a", "dog", "cat", "sitting", "on", "the", "grass", "red", "blue", "ball", "with", "in")


def write_tiny_blip(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised BLIP captioner (1 layer, 32 wide, 32 px) with a WordPiece vocab written here."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    folder.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {token: index for index, token in enumerate(special + list(TINY_WORDS))}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor, tokenizer).save_pretrained(str(folder))
    text = dict(vocab_size=len(special) + len(TINY_WORDS), hidden_size=32, intermediate_size=64,
                num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64,
                pad_token_id=0, bos_token_id=5, eos_token_id=3, sep_token_id=3, encoder_hidden_size=32)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=8)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32))
    model.save_pretrained(str(folder))
    return folder
