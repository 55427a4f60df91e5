"""`python -m forgeline.core.work worker|beat`: run a worker or the periodic scheduler."""

from __future__ import annotations

import argparse

from forgeline.core.settings import get_settings
from forgeline.core.work.celery_app import run_beat, run_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m forgeline.core.work")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run jobs from the queue")
    worker.add_argument("--concurrency", type=int, default=None, help="task slots")
    commands.add_parser("beat", help="schedule the lease reaper")
    args = parser.parse_args(argv)
    if args.command == "worker":
        run_worker(get_settings(), concurrency=args.concurrency)
    else:
        run_beat(get_settings())


if __name__ == "__main__":
    main()
