"""Write and read A1111's "parameters" text (prompt, negative prompt, one line of `Key: value` pairs)."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from webui.sampling.names import UnknownSamplerError, resolve_sampler

# Keys A1111 always places first, in this order, whatever order the caller added them in.
FIXED_KEY_ORDER: tuple[str, ...] = (
    "Steps", "Sampler", "Schedule type", "CFG scale", "Image CFG scale", "Seed", "Face restoration", "Size",
    "Model hash", "Model", "FP8 weight", "Cache FP16 weight for LoRA", "VAE hash", "VAE", "Variation seed",
    "Variation seed strength", "Seed resize from", "Denoising strength", "Conditional mask weight", "Clip skip",
    "ENSD", "Token merging ratio", "Token merging ratio hr", "Init image hash", "RNG", "Tiling",
)
# Keys A1111 always places last.
TRAILING_KEY_ORDER: tuple[str, ...] = ("Version", "User")

# Keys whose value A1111 stores as a float, so an int given by a caller must still print as "7.0".
_ALWAYS_FLOAT_KEYS = frozenset({"CFG scale", "Image CFG scale"})

# Typed view: keys the paste logic feeds into integer / float / checkbox controls.
INT_KEYS = frozenset({
    "Steps", "Seed", "Size-1", "Size-2", "Clip skip", "ENSD", "Variation seed", "Seed resize from-1",
    "Seed resize from-2", "Hires steps", "Hires resize-1", "Hires resize-2", "First pass size-1",
    "First pass size-2", "Mask blur", "Mask blur x", "Mask blur y", "Masked area padding",
})
FLOAT_KEYS = frozenset({
    "CFG scale", "Image CFG scale", "Denoising strength", "Variation seed strength", "Hires upscale",
    "Conditional mask weight", "Token merging ratio", "Token merging ratio hr", "Noise multiplier",
    "Refiner switch at", "Schedule max sigma", "Schedule min sigma", "Schedule rho", "NGMS", "Eta", "Eta DDIM",
    "Hypernet strength", "Sigma churn", "Sigma tmin", "Sigma tmax", "Sigma noise", "Hires CFG Scale",
})
BOOL_KEYS = frozenset({
    "Refiner switch by sampling steps", "Cache FP16 weight for LoRA", "Discard penultimate sigma", "Pad conds",
    "Pad conds v0", "Tiling", "Old prompt editing timelines", "Downcast alphas_cumprod",
})

# Defaults A1111 fills in for keys an infotext lacks (an absent key means the setting was at its default).
PARSE_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("Clip skip", 1), ("Hires resize-1", 0), ("Hires resize-2", 0), ("Hires sampler", "Use same sampler"),
    ("Hires schedule type", "Use same scheduler"), ("Hires checkpoint", "Use same checkpoint"),
    ("Hires prompt", ""), ("Hires negative prompt", ""), ("Mask mode", "Inpaint masked"),
    ("Masked content", "original"), ("Inpaint area", "Whole picture"), ("Masked area padding", 32),
    ("RNG", "GPU"), ("Schedule type", "Automatic"), ("Schedule max sigma", 0), ("Schedule min sigma", 0),
    ("Schedule rho", 0), ("VAE Encoder", "Full"), ("VAE Decoder", "Full"), ("FP8 weight", "Disable"),
    ("Refiner switch by sampling steps", False),
)

# One `Key: value` pair. Keys: a word character then at least one more of word chars, spaces, '-' or '/'
# (so single-character keys are not recognised, as in A1111). Values: a JSON string, or text up to a comma.
_PAIR_RE = re.compile(r'\s*(\w[\w /-]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
_FLAG_RE = re.compile(r"^\w[\w /-]*$")
_NEGATIVE_PREFIX = "Negative prompt:"


def quote_value(value: object) -> str:
    """Write one value: raw, or as a JSON string when it holds `,`, `:` or a newline (non-ASCII kept)."""
    text = str(value)
    # A1111's rule, plus values that start with '"': written raw, the reader would JSON-decode them.
    if any(ch in text for ch in ",:\n") or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def order_params(params: Mapping[str, object]) -> dict[str, object]:
    """Fixed keys first in A1111's order, then the others in insertion order, then Version and User."""
    ordered = {key: params[key] for key in FIXED_KEY_ORDER if key in params}
    tail = set(TRAILING_KEY_ORDER)
    ordered.update((key, value) for key, value in params.items() if key not in ordered and key not in tail)
    ordered.update((key, params[key]) for key in TRAILING_KEY_ORDER if key in params)
    return ordered


def format_params_line(params: Mapping[str, object]) -> str:
    """The single `Key: value, …` line; None values are skipped and a value equal to its key is written bare."""
    parts = []
    for key, value in order_params(params).items():
        if value is None:
            continue
        if key in _ALWAYS_FLOAT_KEYS and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value == key:
            parts.append(key)
        else:
            parts.append(f"{key}: {quote_value(value)}")
    return ", ".join(parts)


def format_infotext(prompt: str, negative_prompt: str, params: Mapping[str, object]) -> str:
    """Build the full infotext exactly as A1111 lays it out (the whole text is stripped at the end)."""
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{format_params_line(params)}".strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value  # A1111 keeps malformed quoted text as it is
        return decoded if isinstance(decoded, str) else value
    return value


def scan_pairs(line: str) -> list[tuple[str, str]]:
    """All `Key: value` pairs on a line, values still as written (quotes included)."""
    return _PAIR_RE.findall(line)


def _bare_flags(line: str) -> list[str]:
    # A value equal to its key is written as the key alone; A1111's reader drops those, we recover them
    # from the comma-separated text that lies between recognised pairs.
    flags: list[str] = []
    last = 0
    for match in _PAIR_RE.finditer(line):
        flags.extend(part.strip() for part in line[last:match.start()].split(","))
        last = match.end()
    flags.extend(part.strip() for part in line[last:].split(","))
    return [flag for flag in flags if _FLAG_RE.match(flag)]


def parse_infotext_raw(text: str) -> dict[str, str]:
    """Split an infotext into strings only: "Prompt", "Negative prompt", and each pair as written.

    Quoted values are JSON-decoded. `WxH` values are kept and also split into `Key-1` / `Key-2`.
    No defaults are added and nothing is converted; `parse_infotext` builds the typed view on top of this.
    """
    *lines, last = text.strip().split("\n")
    if len(scan_pairs(last)) < 3:  # too few pairs: the last line is part of the prompt
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith(_NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(_NEGATIVE_PREFIX):].strip()
        (negative if in_negative else prompt).append(line)
    result = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in scan_pairs(last):
        value = _unquote(value)
        result[key] = value
        size = _SIZE_RE.match(value)
        if size is not None:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
    if last:
        for flag in _bare_flags(last):
            result.setdefault(flag, flag)
    return result


def _typed(key: str, value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        if key in INT_KEYS:
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return int(number) if isinstance(number, int) or number.is_integer() else value
        if key in FLOAT_KEYS:
            return float(value)
    except ValueError:
        return value  # unreadable number: keep the text, the caller decides
    if key in BOOL_KEYS and value in ("True", "False"):
        return value == "True"
    return value


def parse_infotext(text: str) -> dict[str, object]:
    """Parse an infotext the way A1111's paste does and return a typed view.

    Built on `parse_infotext_raw` (use that for the exact strings). Then: a `Hypernet` key becomes a prompt tag,
    A1111's defaults fill missing keys, old "First pass size" hires texts are converted, legacy combined sampler
    names ("DPM++ 2M Karras") are split into `Sampler` + `Schedule type`, and the keys in INT_KEYS / FLOAT_KEYS /
    BOOL_KEYS become int / float / bool (values that do not convert stay strings; all other keys stay strings).
    """
    raw = parse_infotext_raw(text)
    result: dict[str, object] = dict(raw)
    hypernet = raw.get("Hypernet")
    if hypernet is not None:
        result["Prompt"] = raw["Prompt"] + f"<hypernet:{hypernet}:{raw.get('Hypernet strength', '1.0')}>"
    for key, default in PARSE_DEFAULTS:
        result.setdefault(key, default)
    if result["FP8 weight"] != "Disable":
        result.setdefault("Cache FP16 weight for LoRA", False)
    if "Emphasis" not in result and (uses_emphasis(raw["Prompt"]) or uses_emphasis(raw["Negative prompt"])):
        result["Emphasis"] = "Original"
    _split_legacy_sampler(result, "Schedule type" in raw)
    result = {key: _typed(key, value) for key, value in result.items()}
    _restore_old_hires_fix(result)
    return result


def _split_legacy_sampler(result: dict[str, object], explicit_schedule: bool) -> None:
    name = result.get("Sampler")
    if not isinstance(name, str):
        return
    schedule = result["Schedule type"] if explicit_schedule else None
    try:
        sampler, resolved = resolve_sampler(name, schedule if isinstance(schedule, str) else None)
    except UnknownSamplerError:
        try:  # maybe only the schedule is unknown: still canonicalise the sampler, keep the schedule text
            sampler, _ = resolve_sampler(name)
        except UnknownSamplerError:
            return  # an extension's sampler: keep the text, the caller reports it if it cannot run it
        result["Sampler"] = sampler.name
        return
    result["Sampler"] = sampler.name
    result["Schedule type"] = resolved.label


def _restore_old_hires_fix(result: dict[str, object]) -> None:
    # Before the hires rework, "First pass size" was the small size and "Size" the final one.
    first_w, first_h = result.get("First pass size-1"), result.get("First pass size-2")
    if not isinstance(first_w, int) or not isinstance(first_h, int):
        return
    width = _as_int(result.get("Size-1", 512))
    height = _as_int(result.get("Size-2", 512))
    if first_w == 0 or first_h == 0:
        first_w, first_h = old_hires_first_pass_size(width, height)
    result["Size-1"], result["Size-2"] = first_w, first_h
    result["Size"] = f"{first_w}x{first_h}"
    result["Hires resize-1"], result["Hires resize-2"] = width, height
    result["Hires resize"] = f"{width}x{height}"


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else int(str(value))


def old_hires_first_pass_size(width: int, height: int) -> tuple[int, int]:
    """The first-pass size old hires fix picked: about 512x512 pixels, same aspect, rounded up to 64."""
    scale = math.sqrt(512 * 512 / (width * height))
    return math.ceil(scale * width / 64) * 64, math.ceil(scale * height / 64) * 64


# Tokens of A1111's attention syntax: escapes, brackets, an explicit weight closing a round bracket, text.
_ATTENTION_RE = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
_BREAK_RE = re.compile(r"\s*\bBREAK\b\s*")


def uses_emphasis(prompt: str) -> bool:
    """True when some text of the prompt ends up with an attention weight other than 1.0.

    Mirrors how A1111 decides to add `Emphasis: Original` when pasting: unclosed brackets still count,
    `(x:1.0)` does not, and BREAK keywords are ignored.
    """
    weights: list[float] = []  # one weight per text segment, in order
    breaks: set[int] = set()  # segment indices that are BREAK markers
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for i in range(start, len(weights)):
            weights[i] *= factor

    for match in _ATTENTION_RE.finditer(prompt):
        token, explicit = match.group(0), match.group(1)
        if token.startswith("\\"):
            weights.append(1.0)
        elif token == "(":
            round_open.append(len(weights))
        elif token == "[":
            square_open.append(len(weights))
        elif explicit is not None and round_open:
            try:
                scale(round_open.pop(), float(explicit))
            except ValueError:
                pass  # "1.2.3" is not a number; treat the bracket as neutral
        elif token == ")" and round_open:
            scale(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
        else:
            for i, _part in enumerate(_BREAK_RE.split(token)):
                if i > 0:
                    breaks.add(len(weights))
                    weights.append(-1.0)
                weights.append(1.0)
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    return any(w != 1.0 for i, w in enumerate(weights) if i not in breaks)
