"""Command-line entry point: parse A1111-style flags, build the runtime, launch the WebUI."""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from webui.offline import enforce_offline

if TYPE_CHECKING:
    from fastapi import APIRouter

    from webui.models.device import DeviceConfig
    from webui.processing.runtime import Runtime

enforce_offline()  # before anything imports the Hugging Face libraries

REPO = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py",
                                     description="Stable Diffusion WebUI (diffusers, LoRA-first, offline)")
    paths = parser.add_argument_group("paths")
    paths.add_argument("--data-dir", type=Path, default=None,
                       help="base folder for cache.json, config.json, styles.csv and outputs (default: data/, with "
                            "outputs in outputs/ as A1111 has them)")
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
    paths.add_argument("--tagger-dir", type=Path, default=REPO / "models" / "tagger",
                       help="folder of WD14-style ONNX taggers (<name>/model.onnx + selected_tags.csv)")
    paths.add_argument("--blip-dir", type=Path, default=REPO / "models" / "BLIP",
                       help="folder of BLIP captioning models (transformers folders)")
    device = parser.add_argument_group("device and precision")
    device.add_argument("--device", default=None, help="torch device (default: cuda, then mps, then cpu)")
    device.add_argument("--no-half", action="store_true", help="run the model in fp32 on the GPU")
    device.add_argument("--no-half-vae", action="store_true", help="run the VAE in fp32 on the GPU")
    device.add_argument("--medvram", action="store_true", help="keep one model component on the GPU at a time")
    device.add_argument("--lowvram", action="store_true", help="move each layer to the GPU only while it runs")
    device.add_argument("--no-hashing", action="store_true", help="do not compute sha256 of checkpoints")
    fast = parser.add_argument_group("GPU fast paths")
    fast.add_argument("--precision", choices=("autocast", "full", "half", "fp16", "bf16"), default="autocast",
                      help="autocast: fp16 weights under torch.autocast (default); full: fp32; half/fp16: fp16 "
                           "without autocast; bf16: bfloat16 weights under autocast")
    fast.add_argument("--upcast-sampling", action="store_true",
                      help="feed the half-precision UNet fp32 inputs and let autocast pick each op's precision")
    fast.add_argument("--opt-channelslast", action="store_true", help="channels-last memory format for UNet and VAE")
    fast.add_argument("--compile", action="store_true",
                      help="torch.compile the UNet (slow first image; LoRA switches do not recompile)")
    fast.add_argument("--opt-sdp-attention", action="store_true",
                      help="scaled-dot-product attention (already the default; accepted for A1111 command lines)")
    fast.add_argument("--opt-sdp-no-mem-attention", action="store_true",
                      help="scaled-dot-product attention without the memory-efficient kernel (deterministic)")
    fast.add_argument("--disable-opt-split-attention", action="store_true",
                      help="plain attention instead of scaled-dot-product attention")
    fast.add_argument("--lora-keep-backups", action="store_true",
                      help="keep the pristine weights of LoRA-touched layers after a LoRA is removed (as A1111 "
                           "does): re-applying skips the copy, at the cost of that much extra memory")
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


def device_config_from_args(args: argparse.Namespace, device: str | None = None) -> "DeviceConfig":
    """The device flags (A1111's names) → one DeviceConfig; `device` overrides --device (tests)."""
    from webui.models.device import device_config

    return device_config(device=device or args.device, no_half=args.no_half, no_half_vae=args.no_half_vae,
                         medvram=args.medvram, lowvram=args.lowvram, precision=args.precision,
                         upcast_sampling=args.upcast_sampling, channels_last=args.opt_channelslast,
                         compile=args.compile, attention=attention_choice(args),
                         lora_keep_backups=args.lora_keep_backups)


def attention_choice(args: argparse.Namespace) -> str:
    """A1111's attention flags → our Attention value (SDPA unless told otherwise)."""
    if args.disable_opt_split_attention:
        return "classic"
    if args.opt_sdp_no_mem_attention:
        return "sdpa-no-mem"
    return "sdpa"


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


def _api_router(args: argparse.Namespace, runtime: Runtime) -> APIRouter:
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


def runtime_from_args(args: argparse.Namespace) -> "Runtime":
    """The Runtime the path and device flags describe (also built once per replica by `python -m webui.serve`)."""
    from webui.paths import DEFAULT_DATA_DIR, Folders
    from webui.processing.runtime import build_runtime

    data_dir = args.data_dir or DEFAULT_DATA_DIR
    outputs = args.outdir or (args.data_dir / "outputs" if args.data_dir else REPO / "outputs")
    folders = Folders(checkpoints=args.ckpt_dir, vae=args.vae_dir, lora=(args.lora_dir, args.lyco_dir),
                      embeddings=args.embeddings_dir, outputs=outputs, data=data_dir,
                      upscalers=(args.esrgan_models_path, args.realesrgan_models_path, args.swinir_models_path,
                                 args.dat_models_path),
                      taggers=args.tagger_dir, blip=args.blip_dir)
    return build_runtime(folders, device_config_from_args(args), hashing=not args.no_hashing)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from webui.models.registry import BUNDLED_DEMO_STEM

    runtime = runtime_from_args(args)
    folders, device = runtime.folders, runtime.models.device
    log = logging.getLogger("webui")
    checkpoints = runtime.registry.checkpoints()
    log.info(
        "Device %s (%s); %d checkpoint(s) in %s", device.device, device.dtype, len(checkpoints), folders.checkpoints
    )
    if not checkpoints:
        log.warning("No checkpoint found: put a .safetensors model into %s and press refresh", folders.checkpoints)
    elif (default := runtime.registry.default_checkpoint()) is not None and default.stem == BUNDLED_DEMO_STEM \
            and not args.ckpt:
        log.info("No checkpoint of your own in %s: using the bundled demo model %s (it draws coloured shapes)",
                 folders.checkpoints, default.name)
    host = args.server_name or ("0.0.0.0" if args.listen else "127.0.0.1")
    router = _api_router(args, runtime) if args.api or args.nowebui else None
    if router is not None and args.nowebui:
        import uvicorn

        from webui.api.server import api_only_app
        from webui.processing.shutdown import stopping_handler

        if checkpoints:
            preload_checkpoint(runtime, args.ckpt or runtime.settings.current.sd_model_checkpoint, log)
        server = uvicorn.Server(uvicorn.Config(api_only_app(router), host=host, port=args.port or 7861,
                                               log_level="info", timeout_graceful_shutdown=2))
        # uvicorn installs server.handle_exit for SIGTERM/SIGINT: interrupt the running job before it waits on it.
        server.handle_exit = stopping_handler(runtime.queue, server.handle_exit)  # type: ignore[method-assign,assignment]
        server.run()
        return 0
    from webui.ui.app import build_ui, launch_options
    from webui.ui.login_guard import guarded_app_kwargs

    demo = build_ui(runtime)
    ui_options = launch_options(args.theme, localization=runtime.settings.current.localization)
    app_kwargs = guarded_app_kwargs()
    if router is not None:
        from webui.api.server import attach_at_startup

        # Joined in the server's start-up, before the port opens: attached after launch() returns, the API was
        # missing (404) for the first seconds the page already answered.
        app_kwargs["lifespan"] = attach_at_startup(router)
    # Gradio's launch() keeps --share (its tunnel points at this very server); block_thread() then waits just as a
    # blocking launch() would.
    demo.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=args.port or 7860, share=args.share, auth=parse_auth(args.gradio_auth),
        inbrowser=args.autolaunch, show_error=True, prevent_thread_lock=True, app_kwargs=app_kwargs, **ui_options)
    if router is not None:
        log.info("API at %s/sdapi/v1 (docs at /docs)", (demo.local_url or "").rstrip("/"))
    if checkpoints:
        preload_checkpoint(runtime, args.ckpt or runtime.settings.current.sd_model_checkpoint, log)
    from webui.processing.shutdown import stop_jobs_on_signals

    stop_jobs_on_signals(runtime.queue)  # SIGTERM interrupts the running job, then the server closes
    demo.block_thread()
    return 0


def preload_checkpoint(runtime: Runtime, wanted: str | None, log: logging.Logger) -> threading.Thread:
    """Load the checkpoint at start, as A1111 does, but in the background: the page is usable at once, and the
    first Generate finds the model loaded (or waits on the model lock for the rest of the load)."""

    def load() -> None:
        try:
            try:
                runtime.models.load(wanted)
            except ValueError:  # a remembered checkpoint that is gone: the default one instead
                if not wanted:
                    raise
                runtime.models.load(None)
        except Exception as error:  # the UI stays up; the first Generate reports the problem again
            log.error("Could not load a checkpoint at start: %s", error)

    thread = threading.Thread(target=load, name="preload-checkpoint", daemon=True)
    thread.start()
    return thread


if __name__ == "__main__":
    sys.exit(main())
