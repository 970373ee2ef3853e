"""What a run measured, in words for its provenance: the workload (lengths, prompt kind,
shared prefix, conversation), how load arrived (concurrency, rates, profiles, trace, the
arrival process) and the arguments the engine was started with (its options, each variant's
and the matrix's batch sizes and parallelism)."""

from __future__ import annotations

from harness.config.experiment import ExperimentConfig


def _options(options: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in options.items()) or "none"


def _compact(model: object) -> str:
    """A config section's set keys as 'key value, ...' (None for an unset section)."""
    if model is None:
        return "none"
    data = model.model_dump(exclude_none=True) if hasattr(model, "model_dump") else model
    return ", ".join(f"{key} {value}" for key, value in data.items())


def workload_rows(config: ExperimentConfig) -> list[tuple[str, str]]:
    w = config.workload
    prompts = (f"from {w.prompts.file}" if w.prompts is not None
               else f"{w.input_tokens.describe()} tokens")
    rows = [("workload", f"prompts {prompts}, outputs {w.output_tokens.describe()} tokens, "
                         f"prompt kind {w.prompt}")]
    if w.shared_prefix is not None:
        rows.append(("shared prefix", _compact(w.shared_prefix)))
    if w.conversation is not None:
        rows.append(("conversation", _compact(w.conversation)))
    named = config.matrix.workloads or {}
    rows += [(f"workload {name}", _options(keys)) for name, keys in named.items()]
    return rows + load_rows(config)


def load_rows(config: ExperimentConfig) -> list[tuple[str, str]]:
    load = config.load
    size = (f"{load.requests} requests a point" if load.requests is not None
            else f"{load.duration_s:g} s a point" if load.duration_s is not None else "")
    rows = [("arrivals", f"{load.arrival} (burstiness {load.burstiness:g}), {size}, "
                         f"{load.warmup_requests} warm-up requests, timeout "
                         f"{load.request_timeout_s:g} s")]
    if load.concurrency:
        rows.append(("closed loop", "concurrency " + ", ".join(map(str, load.concurrency))))
    if load.rates:
        rows.append(("open loop", "rates " + ", ".join(f"{r:g}" for r in load.rates)
                     + " req/s"))
    scenarios = getattr(load, "scenarios", None) or getattr(load, "profiles", None) or {}
    for name, phases in scenarios.items():
        rows.append((f"scenario {name}", "; ".join(_compact(phase) for phase in phases)))
    if load.trace is not None:
        rows.append(("trace", _compact(load.trace)))
    return rows


def engine_rows(config: ExperimentConfig) -> list[tuple[str, str]]:
    engine, matrix = config.engine, config.matrix
    rows = [("engine arguments", f"{engine.kind}: {_options(dict(engine.options))}")]
    if getattr(engine, "env", None):
        rows.append(("engine environment", _options(dict(engine.env))))
    rows += [(f"variant {name}", _options(options)) for name, options in matrix.variants.items()]
    batch = ", ".join(map(str, matrix.max_num_seqs)) if matrix.max_num_seqs else "engine default"
    rows.append(("matrix", f"max_num_seqs {batch}; tensor_parallel_size "
                           + ", ".join(map(str, matrix.tensor_parallel_size))))
    return rows
