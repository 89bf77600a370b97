"""``grpo-core export``: lora, merged_16bit, merged_4bit or GGUF, each checked against the adapter."""

from __future__ import annotations

import json

import click

from grpo_core.export.export import ExportRequest, export_run


@click.command("export")
@click.argument("run_dir")
@click.option("--format", "format_", required=True, type=click.Choice(["lora", "merged_16bit", "merged_4bit", "gguf"]),
              help="lora: the adapter; merged_16bit: base+adapter merged (CPU ok); merged_4bit: merged NF4 (CUDA + bitsandbytes); gguf: llama.cpp file(s).")
@click.option("--quant", help="GGUF types, comma-separated (default q8_0). f32, f16, bf16, q8_0 are written here (gguf package, offline); "
              "q4_k_m and other k-quants need llama-cpp-python.")
@click.option("--out", help="Output folder (default RUN_DIR/export-FORMAT).")
@click.option("--push-to-hub", metavar="REPO", help="Upload the checked export to the Hugging Face Hub (token from HF_TOKEN only).")
@click.option("--public", is_flag=True, help="With --push-to-hub: create the repo public (default private).")
@click.option("--model", help="Base model, when run.json's model_path is not valid on this machine.")
@click.option("--backend", type=click.Choice(["auto", "peft", "unsloth"]), default="auto", show_default=True,
              help="Merge/save with Unsloth (GPU, when installed) or PEFT.")
@click.option("--gguf-check", type=click.Choice(["auto", "llama.cpp", "reader", "both"]), default="auto", show_default=True,
              help="Check GGUF files in llama.cpp (llama-cpp-python), by reading them back into the HF architecture, or both.")
@click.option("--probe-tokens", type=int, default=16, show_default=True, help="Greedy tokens per probe prompt in the post-export check.")
@click.option("--json", "as_json", is_flag=True, help="Print the export record (files, check results) as JSON on stdout.")
def export(run_dir, format_, quant, out, push_to_hub, public, model, backend, gguf_check, probe_tokens, as_json):
    """Export a trained run and check that the export still carries the training.

    RUN_DIR is a `grpo-core run` output folder (run.json + adapter/) or an
    adapter folder. After exporting, fixed probe prompts run greedily through
    the export and through base+adapter: the command fails (exit 3) when the
    export behaves like the base model (a dropped LoRA) or differs from the
    adapter beyond the format's tolerance. The model card carries run.json.
    """

    req = ExportRequest(run=run_dir, format=format_, quant=tuple((quant or "").split(",")) if quant else (), out=out,
                        push_to_hub=push_to_hub, private=not public, model=model, backend=backend, gguf_check=gguf_check,
                        probe_tokens=probe_tokens)
    echo = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    record = export_run(req, echo=echo)
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str))
