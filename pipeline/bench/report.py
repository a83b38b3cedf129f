"""bench.md: the bench's figures (bench.json) against their goals, as Markdown tables."""

from __future__ import annotations

import math

from pipeline.bench import DATA_PARALLEL_CASES


def markdown(results: dict) -> str:
    """The figures against their goals, as a Markdown table."""
    rows = []

    def add(what: str, value: float, unit: str, goal: float) -> None:
        met = "yes" if value <= goal else "no"
        rows.append(f"| {what} | {value:.3g}{unit} | ≤ {goal:g}{unit} | {met} |")

    if "perceptron" in results:
        p = results["perceptron"]
        add("Perceptron: epoch / conventional run", p["epoch_ratio"], "", p["goal_epoch_ratio"])
        full = p["full"]
        add(
            f"Perceptron: {full['epochs']} epochs ({full['measured']})",
            full["seconds"],
            " s",
            full["goal_seconds"],
        )
    if "transformer" in results:
        t = results["transformer"]
        add("Transformer: epoch / conventional run", t["epoch_ratio"], "", t["goal_epoch_ratio"])
        if t["compiled"]:
            ratio = t["compiled"]["epoch_ratio"]
            add(
                "Transformer, `train.compile`: epoch / conventional run",
                ratio,
                "",
                t["goal_epoch_ratio"],
            )
    if "projection" in results:
        q = results["projection"]
        add(
            f"projection of {q['shape'][0]} × {q['shape'][1]}",
            q["seconds"],
            " s",
            q["goal_seconds"],
        )
    for kind, online in results.get("online", {}).items():  # pipeline/policy/online.py
        for rule in ("online_greedy", "online_positive", "online_softmax"):
            ratio, goal = online[f"{rule}_per_conventional"], online["goal_per_conventional"]
            add(f"{kind}: {rule} run / conventional run (T = {online['steps']})", ratio, "", goal)
    # no goal rows (e.g. `--only contention`): no empty table; the page opens with the next one
    lines = ["| quantity | measured | goal | met |", "| --- | --- | --- | --- |"] if rows else []
    lines += rows
    if "transformer" in results:
        ops = results["transformer"]["eager"]["operations"]
        lines += [
            "",
            f"Transformer step operations (eager): training gradient {ops['grad_seconds']:.3f} s, "
            f"its VJP {ops['vjp_seconds']:.3f} s ({ops['vjp_over_grad']:.2f}× the gradient in "
            f"time, {ops.get('vjp_over_grad_flops', math.nan):.2f}× in FLOPs). By FLOPs alone an "
            "epoch costs at least "
            f"{ops.get('epoch_ratio_flop_floor', math.nan):.2f} conventional runs (training "
            "gradient + its VJP + the desired set's gradient + the test loss, per step). "
            "Self CPU time by operator (torch.profiler):",
            "",
            "| operation | operator | calls | self time | share |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, profiled in ops.get("profile", {}).items():
            for e in profiled:
                ms, share = f"{e['self_ms']:.1f} ms", f"{e['share']:.0%}"
                lines.append(f"| {name} | `{e['op']}` | {e['calls']} | {ms} | {share} |")
    if "memory" in results:
        m = results["memory"]
        lines += [
            "",
            f"Adjoint peak memory, Transformer |θ| = {m['params']}, T = {m['steps']}: "
            f"every θ_t stored {m['every_step']['peak_growth_mb']:.0f} MB "
            f"(|θ|·T = {m['theta_times_T_mb']:.0f} MB), "
            f"checkpoints every √T {m['sqrt_checkpointing']['peak_growth_mb']:.0f} MB "
            f"(|θ|·√T = {m['theta_times_sqrt_T_mb']:.0f} MB).",
        ]
    if "paper_scale" in results:
        p = results["paper_scale"]
        cpu, gpu, size = p["measured_cpu"], p["estimated_gpu"], p["sizes"]
        lines += [
            "",
            f"Paper preset's Transformer (|θ| = {size['params']:,}, N = {size['n_train']}, "
            f"T = {size['steps']}, V = {size['vocab_size']}, {size['seq_len']} tokens). "
            f"Measured here on {cpu['chunk']} sequences: gradient {cpu['grad_seconds']:.2f} s "
            f"({cpu['grad_flops'] / 1e9:.1f} GFLOP), VJP {cpu['vjp_seconds']:.2f} s "
            f"({cpu['vjp_flops'] / 1e9:.1f} GFLOP, {cpu['vjp_peak_growth_mb']:.0f} MB peak); "
            f"one policy epoch would take {cpu['cpu_epoch_hours']:.0f} h on this CPU. "
            f"Estimated on a GPU sustaining {gpu['assumed_sustained_tflops']:g} TFLOP/s: "
            f"{gpu['epoch_pflop']:.0f} PFLOP and {gpu['epoch_hours']:.1f} h per epoch; memory "
            f"{gpu['stored_thetas_gb']:.1f} GB of θ checkpoints (k = {gpu['checkpoint_every']}; "
            f"{gpu['every_theta_stored_gb']:.0f} GB if every θ_t were stored), "
            f"{gpu['policy_and_gradient_gb']:.1f} GB for γ and ∂J/∂γ, "
            f"{gpu['activations_gb_per_chunk']:.1f} GB of activations per chunk of "
            f"{gpu['chunk_size']}.",
        ]
    if "paper_scale" in results and "data_parallel" in results["paper_scale"]:
        parallel = results["paper_scale"]["data_parallel"]
        lines += [
            "",
            f"Paper preset in P data-parallel processes ({parallel['note']}):",
            "",
            "| P | all-reduced per step | sent per process per step | per epoch (time) | memory "
            "per process (first, at saves) | epoch (estimate) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for processes, row in parallel["processes"].items():
            lines.append(
                f"| {processes} | {row['allreduce_mb_per_step']:.0f} MB "
                f"| {row['sent_mb_per_step_per_process']:.0f} MB "
                f"| {row['sent_gb_per_epoch_per_process']:.0f} GB "
                f"({row['communication_seconds_per_epoch']:.0f} s) "
                f"| {row['memory_gb_per_process']:.1f} GB "
                f"({row['memory_gb_first_process_at_saves']:.1f} GB) "
                f"| {row['epoch_hours']:.2f} h |"
            )
    if "data_parallel" in results:
        d = results["data_parallel"]
        one, two = d["one_process_two_threads"], d["two_processes_one_thread"]
        size = d["sizes"]
        lines += [
            "",
            f"Data-parallel on this machine: one policy epoch of the Transformer (|θ| = "
            f"{size['params']:,}, N = {size['n_train']}, T = {size['steps']}) takes "
            f"{one['epoch_seconds']:.2f} s in 1 process × 2 threads and "
            f"{two['epoch_seconds']:.2f} s in 2 processes × 1 thread (gloo; "
            f"{d['speedup_of_processes']:.2f}× the speed), "
            f"{d['one_process_one_thread']['epoch_seconds']:.2f} s in 1 process × 1 thread; "
            f"one all-reduce of |θ| floats {two['allreduce_ms']:.2f} ms. Load average before "
            "each: "
            + ", ".join(f"{d[k]['load_average']:.1f}" for k in DATA_PARALLEL_CASES)
            + " (the machine is shared).",
        ]
    if "contention" in results:
        cores = results["machine"]["cores_available"]
        lines += ["", *contention_table(results["contention"], cores)]
    info = results["machine"]
    lines += [
        "",
        f"Machine: {info['processor']}, {info['cores_available']} cores available, "
        f"{info['torch_threads']} torch threads, torch {info['torch']}.",
    ]
    return "\n".join(lines).lstrip("\n") + "\n"


def contention_table(contention: dict, cores: int | None = None) -> list[str]:
    """Each workload × layout × wait policy: idle and busy time, busy / idle against the goal,
    the load average before the measurements and the competitor's share of a core."""
    workloads = ", ".join(
        f"{name}: {size['policy_epochs']} policy epoch(s) of T = {size['steps']}, "
        f"N = {size['n_train']}"
        for name, size in contention["sizes"].items()
    )
    lines = [
        f"Contention (median of {contention['repeats']}; busy: beside one busy-loop process the "
        f"bench starts and stops; {workloads}). Wait policy: "
        "OpenMP's default (spin, then sleep) or PASSIVE (sleep at once), set before torch loads. "
        f"Goal: busy / idle ≤ {contention['goal_ratio']:g}.",
        *loaded_machine_note(contention, cores),
        "",
        "| workload | layout | wait policy | idle | busy | busy / idle | met | load avg. "
        "before (idle; busy) | competitor's share of a core |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in contention["rows"]:
        loads = "; ".join(
            ", ".join(f"{x:.1f}" for x in row[f"load_{state}"]) for state in ("idle", "busy")
        )
        met = "yes" if row["ratio"] <= contention["goal_ratio"] else "no"
        share = row.get("competitor_share")
        share = "–" if share is None else f"{share:.0%}"
        lines.append(
            f"| {row['workload']} | {row['layout']} | {row['wait_policy']} "
            f"| {row['idle_seconds']:.2f} s | {row['busy_seconds']:.2f} s | {row['ratio']:.2f} "
            f"| {met} | {loads} | {share} |"
        )
    return lines


def loaded_machine_note(contention: dict, cores: int | None) -> list[str]:
    """A warning when the machine was busy before the 'idle' runs (load average ≥ its cores)."""
    loads = [x for row in contention["rows"] for x in row["load_idle"]]
    if cores is None or not loads or min(loads) < cores:
        return []
    return [
        "",
        f"**Measured on a loaded machine**: the load average before the idle runs was "
        f"{min(loads):.1f}–{max(loads):.1f} on {cores} cores, so 'idle' shared the cores with "
        "other work; measure again on an idle machine before drawing conclusions.",
    ]
