"""`python -m pipeline.bench`: the command line of pipeline/bench/cli.py, in the thread
environment of a pipeline job (set here, before torch loads: OpenMP reads it once)."""

import argparse
import os

from pipeline.runtime import set_thread_environment

if __name__ == "__main__":
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--threads", type=int, default=0)
    threads = early.parse_known_args()[0].threads or len(os.sched_getaffinity(0))
    set_thread_environment(threads)
    # here, not at the top: torch loads after the thread environment is set
    from pipeline.bench.cli import main

    main()
