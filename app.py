"""Command-line entry point: parse A1111-style flags, build the runtime, launch the WebUI."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from webui.offline import enforce_offline

enforce_offline()  # before anything imports the Hugging Face libraries

REPO = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="Stable Diffusion WebUI (diffusers, LoRA-first, offline)")
    paths = parser.add_argument_group("paths")
    paths.add_argument("--data-dir", type=Path, default=REPO, help="base folder for outputs, cache.json, config.json")
    paths.add_argument("--ckpt-dir", type=Path, default=REPO / "models" / "Stable-diffusion",
                       help="folder searched (recursively) for .safetensors/.ckpt checkpoints")
    paths.add_argument("--ckpt", default=None, help="checkpoint to load at start (name, title or hash)")
    paths.add_argument("--vae-dir", type=Path, default=REPO / "models" / "VAE", help="folder of VAE files")
    paths.add_argument("--lora-dir", type=Path, default=REPO / "models" / "Lora", help="folder of LoRA files")
    paths.add_argument("--lyco-dir", type=Path, default=REPO / "models" / "LyCORIS",
                       help="second folder searched for LoRA/LyCORIS files")
    for kind, folder in (("esrgan", "ESRGAN"), ("realesrgan", "RealESRGAN"), ("swinir", "SwinIR"), ("dat", "DAT")):
        paths.add_argument(f"--{kind}-models-path", type=Path, default=REPO / "models" / folder,
                           help=f"folder of {folder} upscaler models")
    paths.add_argument("--embeddings-dir", type=Path, default=REPO / "embeddings",
                       help="folder of textual-inversion embeddings")
    paths.add_argument("--outdir", type=Path, default=None, help="output folder (default: <data-dir>/outputs)")
    device = parser.add_argument_group("device and precision")
    device.add_argument("--device", default=None, help="torch device (default: cuda, then mps, then cpu)")
    device.add_argument("--no-half", action="store_true", help="run the model in fp32 on the GPU")
    device.add_argument("--no-half-vae", action="store_true", help="run the VAE in fp32 on the GPU")
    device.add_argument("--medvram", action="store_true", help="keep one model component on the GPU at a time")
    device.add_argument("--lowvram", action="store_true", help="move each layer to the GPU only while it runs")
    device.add_argument("--no-hashing", action="store_true", help="do not compute sha256 of checkpoints")
    server = parser.add_argument_group("server")
    server.add_argument("--listen", action="store_true", help="listen on 0.0.0.0 instead of 127.0.0.1")
    server.add_argument("--server-name", default=None, help="host name or address to bind")
    server.add_argument("--port", type=int, default=None, help="port (default 7860; 7861 with --nowebui)")
    server.add_argument("--share", action="store_true", help="create a public Gradio share link")
    server.add_argument("--gradio-auth", default=None, help="require login: user:pass[,user2:pass2]")
    server.add_argument("--theme", choices=("dark", "light"), default="dark", help="UI theme")
    server.add_argument("--autolaunch", action="store_true", help="open the browser at start")
    api = parser.add_argument_group("API")
    api.add_argument("--api", action="store_true", help="serve the A1111-compatible API at /sdapi/v1 (docs at /docs)")
    api.add_argument("--nowebui", action="store_true", help="serve only the API, without the Gradio UI")
    api.add_argument("--api-auth", default=None,
                     help="require HTTP Basic auth on every API route: user:pass[,user2:pass2]")
    return parser


def parse_auth(text: str | None) -> list[tuple[str, str]] | None:
    if not text:
        return None
    pairs = []
    for item in text.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user:
            raise SystemExit(f"--gradio-auth: expected user:pass, got {item!r}")
        pairs.append((user, password))
    return pairs


def _api_router(args: argparse.Namespace, runtime: object) -> object:
    """The /sdapi/v1 router for --api / --nowebui; a malformed --api-auth stops the start-up."""
    from webui.api.auth import parse_credentials
    from webui.api.server import build_api_router

    try:
        credentials = parse_credentials(args.api_auth)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    flags = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    flags["api_auth"] = "***" if args.api_auth else None  # /cmd-flags must not hand out the passwords
    flags["gradio_auth"] = "***" if args.gradio_auth else None
    return build_api_router(runtime, flags, credentials)


def runtime_from_args(args: argparse.Namespace) -> Any:
    """The Runtime the path and device flags describe (also built once per replica by `python -m webui.serve`)."""
    from webui.models.device import device_config
    from webui.paths import Folders
    from webui.processing.runtime import build_runtime

    folders = Folders(checkpoints=args.ckpt_dir, vae=args.vae_dir, lora=(args.lora_dir, args.lyco_dir),
                      embeddings=args.embeddings_dir, outputs=args.outdir or args.data_dir / "outputs",
                      data=args.data_dir, upscalers=(args.esrgan_models_path, args.realesrgan_models_path,
                                                     args.swinir_models_path, args.dat_models_path))
    device = device_config(device=args.device, no_half=args.no_half, no_half_vae=args.no_half_vae,
                           medvram=args.medvram, lowvram=args.lowvram)
    return build_runtime(folders, device, hashing=not args.no_hashing)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from webui.models.registry import BUNDLED_DEMO_STEM

    runtime = runtime_from_args(args)
    folders, device = runtime.folders, runtime.models.device
    log = logging.getLogger("webui")
    checkpoints = runtime.registry.checkpoints()
    log.info("Device %s (%s); %d checkpoint(s) in %s", device.device, device.dtype, len(checkpoints), folders.checkpoints)
    if not checkpoints:
        log.warning("No checkpoint found: put a .safetensors model into %s and press refresh", folders.checkpoints)
    elif args.ckpt:
        runtime.models.load(args.ckpt)
    elif runtime.registry.default_checkpoint().stem == BUNDLED_DEMO_STEM:
        log.info("No checkpoint of your own in %s: using the bundled demo model %s (it draws coloured shapes)",
                 folders.checkpoints, runtime.registry.default_checkpoint().name)
    host = args.server_name or ("0.0.0.0" if args.listen else "127.0.0.1")
    router = _api_router(args, runtime) if args.api or args.nowebui else None
    if args.nowebui:
        import uvicorn

        from webui.api.server import api_only_app

        uvicorn.run(api_only_app(router), host=host, port=args.port or 7861, log_level="info")
        return 0
    from webui.ui.app import build_ui, launch_options

    demo = build_ui(runtime)
    ui_options = launch_options(args.theme, localization=runtime.settings.current.localization)
    # Gradio's launch() keeps --share (its tunnel points at this very server); the API routes join that server's
    # app right after it starts, and block_thread() then waits just as a blocking launch() would.
    app, _, _ = demo.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=args.port or 7860, share=args.share, auth=parse_auth(args.gradio_auth),
        inbrowser=args.autolaunch, show_error=True, prevent_thread_lock=True, **ui_options)
    if router is not None:
        from webui.api.server import attach_api

        attach_api(app, router)
        log.info("API at %s/sdapi/v1 (docs at /docs)", demo.local_url.rstrip("/"))
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
