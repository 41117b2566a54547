"""`python -m webui.models.bake_cli` (installed as `webui-bake`): merge LoRAs into a checkpoint from the shell."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from webui.errors import UserInputError
from webui.offline import enforce_offline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webui.models.bake_cli",
        description="Merge one or more LoRAs into a checkpoint and save it as a single A1111/LDM-layout file.")
    parser.add_argument("--checkpoint", required=True, type=Path, help="source checkpoint (.safetensors/.ckpt)")
    parser.add_argument("--lora", action="append", required=True, metavar="FILE:WEIGHT",
                        help="LoRA file and weight (repeatable, merged in order); FILE:TE:UNET sets both separately")
    parser.add_argument("--out", required=True, type=Path, help="output .safetensors path")
    parser.add_argument("--fp32", action="store_true", help="save fp32 weights (default: fp16)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit status (2 for a user error, with a one-line message).

    Nothing here can reach the network: modules are built from shipped configs, and the offline switches are
    set before the bake module (and with it diffusers/transformers) is imported.
    """
    enforce_offline()
    from webui.models.bake import bake, parse_lora_arg  # only now: see above

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        loras = [parse_lora_arg(text) for text in args.lora]
        report = bake(args.checkpoint, loras, args.out, fp32=args.fp32, overwrite=args.overwrite,
                      progress=not args.quiet)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {report.out} ({report.tensors_saved} tensors; {', '.join(report.applied)} merged into "
          f"{report.layers_written} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
