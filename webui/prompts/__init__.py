"""Prompt syntax (A1111 v1.10.1 semantics): extra-network tags, AND, prompt editing/alternation, emphasis and BREAK.

Public API:
    parse_attention(text) -> list[tuple[str, float]]
    prompt_schedule(prompt, steps, hires_steps=None, *, old_timeline=False) -> list[tuple[int, str]]
    split_and_prompts(text) -> list[tuple[str, float]]
    extract_extra_networks(text) -> tuple[str, list[ExtraNetworkTag]]
    parse_prompt(text, steps, hires_steps=None, *, negative=False, old_timeline=False) -> ParsedPrompt

None of these raise on any input string. Scheduling uses the Lark LALR grammar in prompt.lark
(with a bracket-pairing post-lexer); emphasis, AND and tags use small regex tokenizers.
"""
from webui.prompts.attention import BREAK_WEIGHT, parse_attention
from webui.prompts.composable import split_and_prompts
from webui.prompts.extra_networks import ExtraNetworkTag, extract_extra_networks
from webui.prompts.parsed import ParsedPrompt, ScheduledText, SubPrompt, parse_prompt
from webui.prompts.schedule import prompt_schedule

__all__ = [
    "BREAK_WEIGHT",
    "ExtraNetworkTag",
    "ParsedPrompt",
    "ScheduledText",
    "SubPrompt",
    "extract_extra_networks",
    "parse_attention",
    "parse_prompt",
    "prompt_schedule",
    "split_and_prompts",
]
