import tempfile
from pathlib import Path

import yaml

from pipeline.bench import main

smk = snakemake  # noqa: F821  (the object Snakemake gives every script)
with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:  # the workflow's configuration
    yaml.safe_dump(dict(smk.config), config)
    config.flush()
    out = str(Path(smk.output.json).parent)
    main(["--out", out, "--threads", str(smk.threads), "--config", config.name], smk.log[0])
