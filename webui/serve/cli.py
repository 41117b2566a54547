"""Command line and config builder of the Ray Serve app: `python -m webui.serve --replicas N` or `serve deploy`."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

DEFAULT_PORT = 8000


def build_parser() -> argparse.ArgumentParser:
    """app.py's path, device and --api-auth flags plus the cluster's own."""
    import app as launcher

    parser = launcher.build_parser()
    parser.prog = "python -m webui.serve"
    cluster = parser.add_argument_group("Ray Serve")
    cluster.add_argument("--replicas", type=int, default=1, help="worker replicas (one Runtime, one GPU each)")
    cluster.add_argument("--num-gpus-per-replica", type=float, default=None,
                         help="GPUs each replica reserves (default: 1 where this machine has CUDA, else 0)")
    cluster.add_argument("--num-cpus-per-replica", type=float, default=1, help="CPUs each replica reserves")
    cluster.add_argument("--address", default=None, help="Ray cluster: auto, ray://host:10001 (default: start one)")
    cluster.add_argument("--no-multiplex", action="store_true", help="route round-robin instead of by LoRA stack")
    cluster.add_argument("--max-ongoing-per-replica", type=int, default=8,
                         help="requests a replica holds at once; beyond it the router spills to other replicas")
    cluster.add_argument("--torch-threads", type=int, default=0, help="torch CPU threads per replica (0: torch's)")
    return parser


SERVE_ONLY = ("--replicas", "--num-gpus-per-replica", "--num-cpus-per-replica", "--address", "--no-multiplex",
              "--torch-threads", "--max-ongoing-per-replica", "--port", "--listen", "--server-name")


def replica_argv(argv: list[str]) -> list[str]:
    """The flags a replica's Runtime and router are built from: everything but the cluster's own."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in SERVE_ONLY:
            skip = "=" not in item and name not in ("--no-multiplex", "--listen")
            continue
        kept.append(item)
    return kept


def _gpus_per_replica(asked: float | None) -> float:
    if asked is not None:
        return asked
    import torch

    return 1 if torch.cuda.is_available() else 0


def build_app(args: argparse.Namespace, argv: list[str], app_name: str = "webui") -> Any:
    """The Serve application graph: Ingress → Worker × replicas, sharing one ClusterState actor."""
    from webui.serve import deployments

    # serve.deployment turns the classes into Deployments; type checkers still see the plain classes.
    Worker: Any = deployments.Worker
    Ingress: Any = deployments.Ingress

    state_name = f"{app_name}-state"
    worker = Worker.options(num_replicas=args.replicas, max_ongoing_requests=args.max_ongoing_per_replica,
                            ray_actor_options={
        "num_cpus": args.num_cpus_per_replica, "num_gpus": _gpus_per_replica(args.num_gpus_per_replica)})
    bound = worker.bind(replica_argv(argv), state_name, args.torch_threads, not args.no_multiplex)
    return Ingress.bind(bound, state_name, not args.no_multiplex)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import ray
    from ray import serve

    ray.init(address=args.address)
    host = args.server_name or ("0.0.0.0" if args.listen else "127.0.0.1")
    serve.start(http_options={"host": host, "port": args.port or DEFAULT_PORT})
    serve.run(build_app(args, argv), name="webui", route_prefix="/")
    logging.getLogger("webui").info("A1111 API on Ray Serve at http://%s:%d/sdapi/v1 (%d replicas)", host,
                                    args.port or DEFAULT_PORT, args.replicas)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    serve.shutdown()
    return 0


def app_builder(config: dict[str, Any]) -> Any:
    """`import_path: webui.serve.cli:app_builder` for `serve deploy`: `args` are the CLI flags, `ckpt_dir: …` style."""
    argv: list[str] = []
    for key, value in config.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return build_app(build_parser().parse_args(argv), argv)
