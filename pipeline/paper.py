"""Numbers the paper reports (SPEC §6), shown beside ours in figures and tables.

They are reference values only: no result of the pipeline is computed from them.
"""

ACCELERATION_RATIO = {"perceptron": 5.50, "transformer": 2.41}  # Figure 5

# Table 1: scaling-law coefficients of the Transformer's test-loss curve, L = L0 + (B/t)^β.
SCALING_LAW = {
    "conventional": {"B": 3.16e8, "beta": 0.12},
    "near_optimal": {"B": 1.99e7, "beta": 0.14},
}
SCALING_LAW_FIT = {"t0": 400, "L0": 0.0515}  # Section 4.6
SCALING_LAW_IMPROVEMENT = {"dB_over_B": 0.966, "dbeta_over_beta": 0.212}  # Figure 11

# Table 2: (T, N, V) → |ΔB/B|, |Δβ/β|, AR (Eq. 9).
TABLE2 = [
    {
        "steps": 1000,
        "n_train": 2**12,
        "vocab_size": 4000,
        "dB_over_B": 0.885,
        "dbeta_over_beta": 0.100,
        "AR": 2.16,
    },
    {
        "steps": 2000,
        "n_train": 2**13,
        "vocab_size": 4500,
        "dB_over_B": 0.949,
        "dbeta_over_beta": 0.180,
        "AR": 2.31,
    },
    {
        "steps": 4000,
        "n_train": 2**14,
        "vocab_size": 5000,
        "dB_over_B": 0.937,
        "dbeta_over_beta": 0.187,
        "AR": 2.41,
    },
    {
        "steps": 8000,
        "n_train": 2**15,
        "vocab_size": 6000,
        "dB_over_B": 0.948,
        "dbeta_over_beta": 0.190,
        "AR": 2.48,
    },
]
