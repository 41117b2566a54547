"""Offline prompt fuzzing: a million random prompts biased to the syntax's specials, checked for totality and time.

    .venv/bin/python scripts/fuzz_prompts.py --runs 1000000 [--seed 0] [--max-pieces 200]

Every prompt is either refused by the documented limits (webui/prompts/limits.py) or parsed into a well-formed
schedule; the slowest seconds-per-character seen is printed, and any failing prompt is written to a file.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webui.prompts import parse_prompt  # noqa: E402
from webui.prompts.fuzzing import SPECIALS, check_parsed  # noqa: E402
from webui.prompts.limits import MAX_PROMPT_CHARS, prompt_problem  # noqa: E402

ALPHABET = "abc xyz,.0123456789-()[]:|\\<>=中"


def random_prompt(rng: random.Random, max_pieces: int) -> str:
    pieces = []
    for _ in range(rng.randint(0, max_pieces)):
        if rng.random() < 0.6:
            pieces.append(rng.choice(SPECIALS))
        else:
            pieces.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6))))
    if rng.random() < 0.01:
        pieces.insert(rng.randint(0, len(pieces)), "\ud800")  # a lone surrogate: must be refused, not crash
    if rng.random() < 0.001:  # now and then a long one, near the size limit
        pieces = pieces * max(1, MAX_PROMPT_CHARS // max(1, len("".join(pieces))) - 1)
    return "".join(pieces)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-pieces", type=int, default=200)
    parser.add_argument("--failures", type=Path, default=Path("outputs/fuzz-failures.txt"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    refused = failures = 0
    worst = (0.0, 0)  # (seconds per character, length)
    worst_prompt = ""
    for _ in tqdm(range(args.runs), unit="prompt", mininterval=2.0):
        prompt = random_prompt(rng, args.max_pieces)
        steps = rng.randint(1, 150)
        started = time.perf_counter()
        try:
            if prompt_problem(prompt) is not None:
                refused += 1
            else:
                check_parsed(parse_prompt(prompt, steps), steps)
        except Exception as error:  # noqa: BLE001 - any exception is a finding
            failures += 1
            args.failures.parent.mkdir(parents=True, exist_ok=True)
            with args.failures.open("a", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(f"{type(error).__name__}: {error}\t{prompt!r}\n")
        elapsed = time.perf_counter() - started
        if len(prompt) > 100 and elapsed / len(prompt) > worst[0]:
            worst, worst_prompt = (elapsed / len(prompt), len(prompt)), prompt
    print(f"{args.runs} prompts: {failures} failures, {refused} refused by the limits; slowest "
          f"{worst[0] * 1e6:.1f} µs/char (at {worst[1]} chars: {worst_prompt[:200]!r})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
