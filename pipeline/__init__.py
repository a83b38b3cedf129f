"""Towards Optimal Learning of Language Models (Gu et al., 2024), reproduced as a pipeline."""
