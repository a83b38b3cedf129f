"""`python -m pipeline.bench`: the command line of pipeline/bench/cli.py."""

from pipeline.bench.cli import main

if __name__ == "__main__":
    main()
