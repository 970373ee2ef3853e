"""`harness dummy-model OUT_DIR`: a random-weight Llama-shaped model directory."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.commands.console import console, user_error
from harness.config.shapes import SHAPES


def dummy_model(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Directory to write."),
    shape: str = typer.Option("tiny", "--shape",
                              help=f"Model shape: {', '.join(SHAPES)}."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="torch_dtype written to config.json."),
    weights: bool = typer.Option(False, "--weights",
                                 help="Also write seeded random weights (model.safetensors)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights (with --weights)."),
) -> None:
    """Write a random-weight Llama-shaped model directory (config.json + tokenizer, no weights).

    Serve it with vLLM's `--load-format dummy` to measure a real shape without downloading
    weights; in a config write `model: dummy:<shape>` and the harness does this for you. With
    --weights it also holds seeded random weights, which any engine loads (fidelity runs do).
    """
    from harness.engines.dummy_model import write_dummy_model, write_random_weights

    if shape not in SHAPES:
        raise user_error(f"--shape: unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    write_dummy_model(out_dir, shape, dtype)
    if weights:
        try:
            write_random_weights(out_dir, seed)
        except OSError as err:
            raise user_error(str(err)) from None
        console.print(f"wrote {shape} model files and seed-{seed} random weights to {out_dir}")
        return
    console.print(f"wrote {shape} model files to {out_dir} (serve with --load-format dummy)")
