"""`rule benchmark`: `python -m pipeline.bench` on the workflow's configuration.

Run as its own process rather than imported: the benchmark measures memory in `spawn`ed
subprocesses, which re-import the main module — this script, whose `snakemake` object they lack.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

smk = snakemake  # noqa: F821  (the object Snakemake gives every script)
with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:  # the workflow's configuration
    yaml.safe_dump(dict(smk.config), config)
    config.flush()
    out = str(Path(smk.output.json).parent)
    command = [sys.executable, "-m", "pipeline.bench", "--out", out, "--threads", str(smk.threads)]
    with open(smk.log[0], "w") as log:
        subprocess.run(
            [*command, "--config", config.name], stdout=log, stderr=subprocess.STDOUT, check=True
        )
