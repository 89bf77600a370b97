"""The phases of ``grpo-core run``, in the order the runner calls them.

set up (settings, the backend) -> rewards -> data -> pre-flight -> record -> load -> evaluate before ->
warm-up (and the evaluation after it) -> rollout probe -> build the trainer -> train -> save -> evaluate after -> report.

Each phase is a function: what it needs comes in (the run's fixed facts as a :class:`RunSetup`, and the
outputs of earlier phases), what it makes goes out. None of them names a backend; they ask the
:class:`~grpo_core.train.backends.base.Backend`. Two seams for checks and training-time additions:
:func:`preflight` takes ``extra_checks``, and :func:`build_trainer` takes ``extra_callbacks`` and
``metric_sources`` next to the backend's own.

The callbacks, the step clock and the step tracer import transformers at their module top; they are
imported inside the phases that use them, so that importing the runner (every ``grpo-core`` command
does) never loads the ML stack.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from grpo_core.config.settings import AUTO_FRACTION, RunConfig
from grpo_core.config.trl_fields import grpo_defaults
from grpo_core.errors import PreflightError
from grpo_core.evaluation.plan import EvalPlan
from grpo_core.evaluation.report import write_report
from grpo_core.kit.chat_templates import apply_template
from grpo_core.kit.datasets import check_dataset_options, content_hash, parse_dataset_spec
from grpo_core.plugins.lookup import get_dataset
from grpo_core.rewards.engine import RewardEngine
from grpo_core.rewards.selection import options_text
from grpo_core.run_folder import RunInfo, failure_summary, is_main_process, is_run_folder, last_checkpoint, reward_records, write_adapter_card
from grpo_core.runtime.hardware import BUNDLED_MODEL, resolve_model
from grpo_core.train import is_correction
from grpo_core.train import preflight as checks
from grpo_core.train import probe as rollout_probe
from grpo_core.train.backends import Backend, LoadedPolicy, choose_backend, ignored_settings, others
from grpo_core.train.dynamic_sampling import DynamicSampling
from grpo_core.train.generation_batch import with_generation_hooks
from grpo_core.train.preflight import PreflightReport, prompt_lengths
from grpo_core.train.processes import every_process
from grpo_core.train.resume import ResumesOnCpuProcesses
from grpo_core.train.rollout_log import RolloutLog
from grpo_core.train.sft import run_sft
from grpo_core.train.trainer_metrics import MetricSource, with_run_metrics
from grpo_core.train.trl_glue import EngineRewardFuncs

Echo = Callable[[str], None]
#: a pre-flight check beyond the built-in ones: sees the (checked) dataset, says what it found, raises PreflightError to stop
PreflightCheck = Callable[[Any, PreflightReport], None]


@dataclass(frozen=True)
class RunSetup:
    """What stays fixed through a run once its settings are checked and its backend chosen."""

    cfg: RunConfig
    backend: Backend
    backend_reason: str
    model_path: str
    world_size: int
    resume: bool
    echo: Echo

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.output_dir)


@dataclass
class TrainingData:
    adapter: Any  # the DatasetAdapter
    name: str
    dataset: Any  # a datasets.Dataset with a "prompt" column


@dataclass
class Prepared:
    """What pre-flight leaves: the settings as they will run, the checked dataset, TRL's arguments, the report."""

    cfg: RunConfig
    dataset: Any
    grpo_kwargs: dict
    report: PreflightReport


@dataclass
class Training:
    """A built trainer and the run's own callbacks on it."""

    trainer: Any
    progress: Any  # callbacks.ProgressCallback
    stop: Any  # callbacks.GracefulStop
    clock: Any  # phases.PhaseClock
    max_steps: int


def default_grpo_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """GRPOConfig's values unless the run sets them: grpo-core's documented defaults (docs/config.md)."""
    return {"output_dir": cfg.output_dir, "seed": cfg.seed, **grpo_defaults()}


def set_up(cfg: RunConfig, *, world_size: int, resume: bool, echo: Echo) -> RunSetup:
    """Check the settings, choose the backend (and say why), prepare the process for it."""
    cfg.validate()
    backend, why = choose_backend(cfg)
    echo(f"backend: {backend.name} ({why})")
    backend.prepare_process()  # before trl is imported
    for note in ignored_settings(cfg, backend, others(backend)):
        echo(note)
    if cfg.threads:
        import torch  # deferred: heavy (torch)

        torch.set_num_threads(cfg.threads)
    model_path = resolve_model(cfg.model, echo)
    quiet_libraries()
    return RunSetup(cfg, backend, why, model_path, world_size, resume, echo)


def rewards(setup: RunSetup) -> RewardEngine:
    """The reward engine for the selection, before anything is loaded."""
    engine = RewardEngine.from_selection(setup.cfg.reward_selection, on_error=setup.cfg.on_reward_error)
    setup.echo("rewards: " + ", ".join(f"{r.name}×{r.weight:g} ({r.spec.provenance.describe()}{options_text(r.spec.options)})"
                                       for r in engine.rewards))
    return engine


def data(setup: RunSetup) -> TrainingData:
    """The training split, through its dataset adapter."""
    cfg = setup.cfg
    name, split = parse_dataset_spec(cfg.dataset)
    adapter = get_dataset(name)
    check_dataset_options(adapter, cfg.dataset_options)
    dataset = adapter.load(split, system_prompt=cfg.system_prompt, limit=cfg.limit, **cfg.dataset_options)
    if len(dataset) == 0:
        raise PreflightError(f"dataset {cfg.dataset!r} loaded no rows.")
    setup.echo(f"dataset: {name}:{split or adapter.splits[0]} ({len(dataset)} rows, verifier {adapter.verifier!r})")
    setup.echo(EvalPlan.target(cfg, adapter, name)[2])
    return TrainingData(adapter, name, dataset)


def preflight(setup: RunSetup, training_data: TrainingData, engine: RewardEngine,
              extra_checks: Sequence[PreflightCheck] = ()) -> Prepared:
    """Everything that can fail before the model loads, on the tokenizer alone; sizes the backend's vLLM engine."""
    from transformers import AutoConfig, AutoTokenizer  # deferred: heavy (transformers)

    cfg, backend = setup.cfg, setup.backend
    tokenizer = AutoTokenizer.from_pretrained(setup.model_path)
    model_config = AutoConfig.from_pretrained(setup.model_path)
    max_positions = getattr(model_config.get_text_config(), "max_position_embeddings", None)
    apply_template(tokenizer, cfg.chat_template)
    grpo_kwargs = {**default_grpo_kwargs(cfg), **is_correction.correction_kwargs(cfg), **cfg.grpo}
    if setup.world_size > 1:
        # LoRA touches every adapted layer in every forward pass: DDP's search for unused parameters
        # is a wasted traversal of the graph each step (and a warning on every rank)
        grpo_kwargs.setdefault("ddp_find_unused_parameters", False)
    setup.echo("pre-flight:")
    vllm_setup = backend.vllm_setup(cfg, setup.model_path, grpo_kwargs)
    dataset, report = checks.run_all(training_data.dataset, tokenizer, engine, cfg, grpo_kwargs, setup.world_size,
                                     echo=setup.echo, vllm=vllm_setup, extra_checks=extra_checks, max_positions=max_positions)
    if vllm_setup is not None and cfg.gpu_memory_utilization == AUTO_FRACTION:
        # the number pre-flight chose is the one every later reader sees: the backend, run.json
        cfg = dataclasses.replace(cfg, gpu_memory_utilization=report.facts["vllm_memory"]["fraction"])
    backend.after_preflight(grpo_kwargs, report.facts)
    engine.reset_stats()  # the smoke test's calls are not training metrics
    return Prepared(cfg, dataset, grpo_kwargs, report)


def record(setup: RunSetup, training_data: TrainingData, engine: RewardEngine, prepared: Prepared, *, dry_run: bool) -> RunInfo:
    """run.json as it stands before the model loads (a dry run ends here).

    A dry run writes preflight.json instead, and nothing at all into a folder that holds a run; a resumed
    run keeps what its run.json recorded and adds this resume to its ``resumes``."""
    cfg, dataset = prepared.cfg, prepared.dataset
    if dry_run:
        info = RunInfo(setup.out_dir, filename="preflight.json", enabled=not is_run_folder(setup.out_dir))
    else:
        info = RunInfo(setup.out_dir, resumed=setup.resume)
    info.update(
        status="dry-run" if dry_run else "loading",
        model=cfg.model or "bundled:tiny-reasoner",
        model_path=setup.model_path,
        backend=setup.backend.name,
        backend_reason=setup.backend_reason,
        config=cfg.to_dict(),
        grpo_config=prepared.grpo_kwargs,
        rewards=reward_records(engine),
        world_size=setup.world_size,
        dataset={
            "spec": cfg.dataset,
            "adapter": getattr(training_data.adapter, "name", training_data.name),
            "rows": len(dataset),
            "content_hash": content_hash(dataset.to_list()),
        },
        preflight={"facts": prepared.report.facts, "warnings": prepared.report.warnings},
    )
    return info


def load(setup: RunSetup, grpo_kwargs: dict, info: RunInfo) -> LoadedPolicy:
    """The policy, as the backend loads it; its GRPOConfig overrides fill what the user left unset."""
    policy = setup.backend.load_policy(setup.cfg, setup.model_path)
    for note in policy.notes:
        setup.echo(note)
    apply_template(policy.tokenizer, setup.cfg.chat_template)
    for k, v in policy.grpo_overrides.items():
        grpo_kwargs.setdefault(k, v)
    info.update(status="running", grpo_config=grpo_kwargs)
    return policy


def evaluate_before(setup: RunSetup, training_data: TrainingData, policy: LoadedPolicy, info: RunInfo) -> EvalPlan | None:
    """The held-out evaluation plan, and its first half on the untrained policy (not when resuming)."""
    evals = EvalPlan.from_config(setup.cfg, training_data.adapter, training_data.name, setup.echo)
    if evals and setup.resume:
        evals.restore(info.data.get("evaluation"))
    elif evals and info.enabled:
        evals.run("before", policy.model, policy.tokenizer)
        info.update(evaluation=evals.summary())  # recorded now: a run killed later keeps it
    return evals


def warm_up(setup: RunSetup, policy: LoadedPolicy, prepared: Prepared, info: RunInfo, evals: EvalPlan | None = None) -> tuple[Any, Any]:
    """SFT on the dataset's worked solutions, when asked for: the model to train and the LoRA config still to apply.
    With ``evals``, the held-out evaluation runs again after it, so GRPO's own gain is a number."""
    cfg = setup.cfg
    model, peft_config = policy.model, policy.peft_config
    if not cfg.sft_warmup_steps or setup.resume:
        return model, peft_config
    if peft_config is not None:
        from peft import get_peft_model  # deferred: heavy (peft)

        model, peft_config = get_peft_model(model, peft_config), None
    loss = run_sft(model, policy.tokenizer, prepared.dataset, steps=cfg.sft_warmup_steps, learning_rate=cfg.sft_learning_rate,
                   output_dir=str(setup.out_dir / "sft"), grpo_kwargs=prepared.grpo_kwargs, seed=cfg.seed, echo=setup.echo)
    info.update(sft={"steps": cfg.sft_warmup_steps, "loss": loss})
    if evals and info.enabled:
        evals.run("after_sft", model, policy.tokenizer)
    return model, peft_config


def probe(setup: RunSetup, model: Any, policy: LoadedPolicy, prepared: Prepared, engine: RewardEngine, info: RunInfo) -> None:
    """The rollout probe: sample and score before GRPO; stop (unless --force) when the rewards cannot teach this model."""
    cfg, echo, grpo_kwargs = setup.cfg, setup.echo, prepared.grpo_kwargs
    prompts = rollout_probe.resolve_prompts(cfg.probe, bundled=setup.model_path == str(BUNDLED_MODEL))
    if not prompts or setup.resume:
        return
    result = rollout_probe.run_probe(model, policy.tokenizer, prepared.dataset, engine, prompts=prompts,
                                     num_generations=int(grpo_kwargs.get("num_generations", 8)),
                                     max_completion_length=int(grpo_kwargs.get("max_completion_length", 256)),
                                     temperature=float(grpo_kwargs.get("temperature", 1.0)), seed=cfg.seed)
    rollout_probe.echo_lines(result, echo)
    why = rollout_probe.stop_message(result, cfg.probe_max_tied, sft_done=bool(cfg.sft_warmup_steps))
    info.update(probe={**result.to_dict(), "max_tied": cfg.probe_max_tied, "stopped": bool(why) and not cfg.force, "forced": bool(why) and cfg.force})
    if why and cfg.force:
        echo("  warning: " + why.splitlines()[0].removesuffix(" Try:") + " Training anyway (--force).")
    elif why:
        info.update(status="stopped by the rollout probe")
        raise PreflightError(why)


def build_trainer(setup: RunSetup, policy: LoadedPolicy, model: Any, peft_config: Any, prepared: Prepared, engine: RewardEngine, *,
                  extra_callbacks: Iterable[Any] = (), metric_sources: Iterable[MetricSource] = ()) -> Training:
    """The backend's GRPO trainer with the run's callbacks, and the reward engine and step clock as metric sources."""
    from transformers import set_seed  # deferred: heavy (transformers)
    from trl import GRPOConfig  # deferred: heavy (trl)

    from grpo_core.train.callbacks import GracefulStop, ProgressCallback, drop_default_printer  # deferred: transformers at its top
    from grpo_core.train.phases import PhaseClock  # deferred: transformers at its top

    cfg, backend, echo = setup.cfg, setup.backend, setup.echo
    reward_funcs = EngineRewardFuncs(engine)
    args = GRPOConfig(**prepared.grpo_kwargs, reward_weights=[r.weight for r in engine.rewards])
    progress = ProgressCallback(engine.names, zero_variance_patience=cfg.zero_variance_patience, engine=engine,
                                reported_keys=engine.progress_keys())
    stop = GracefulStop()
    clock = PhaseClock(sync_cuda=cfg.profile).install()
    callbacks = [progress, stop, clock, *backend.callbacks(cfg, echo), *extra_callbacks]
    if cfg.trace_step:
        from grpo_core.train.step_trace import StepTracer  # deferred: torch at its top

        callbacks.append(StepTracer(cfg.trace_step, setup.out_dir, echo=echo))
    lengths = longest_first_lengths(cfg, prepared.dataset, policy.tokenizer, setup.resume, echo)
    trainer_class = with_run_metrics(with_generation_hooks(backend.trainer_class(cfg, policy, first_round_lengths=lengths, echo=echo)))
    trainer_class = type(trainer_class.__name__, (ResumesOnCpuProcesses, trainer_class), {"__module__": trainer_class.__module__})
    dynamic = DynamicSampling(cfg.dynamic_sampling_max_rounds, seed=cfg.seed) if cfg.dynamic_sampling else None
    rollout_log = RolloutLog(setup.out_dir, enabled=is_main_process()) if cfg.log_rollouts else None
    # TRL creates the LoRA adapter before the Trainer seeds anything: seed here, so that the adapter's initial
    # weights depend on the seed alone, not on what drew random numbers before (which differs with the process count)
    set_seed(cfg.seed)
    with backend.building_trainer(cfg, echo):
        trainer = trainer_class(
            model=model,
            reward_funcs=reward_funcs.funcs(),
            args=args,
            train_dataset=prepared.dataset,
            processing_class=policy.tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
            metric_sources=[reward_funcs, clock, *metric_sources],
            dynamic_sampling=dynamic,
            rollout_log=rollout_log,
        )
    backend.trainer_built(trainer, cfg, echo)
    echo(is_correction.describe(trainer, args))
    if dynamic is not None:
        echo(f"dynamic sampling: groups whose rewards all tie are replaced from further prompts (at most {cfg.dynamic_sampling_max_rounds} extra rounds per batch)")
    drop_default_printer(trainer)
    return Training(trainer, progress, stop, clock, args.max_steps)


def train(setup: RunSetup, training: Training, engine: RewardEngine, info: RunInfo) -> str:
    """GRPO until done, stopped (Ctrl-C once: after this step) or aborted; the status it ended with."""
    ckpt = last_checkpoint(setup.cfg.output_dir) if setup.resume else None
    if ckpt:
        setup.echo(f"resuming from {ckpt}")
    setup.echo(f"training: {training.max_steps} steps")
    training.stop.install()
    status = "finished"
    try:
        training.trainer.train(resume_from_checkpoint=ckpt)
        if training.stop.requested:
            status = "interrupted"
    except KeyboardInterrupt:
        status = "aborted"
    except Exception as exc:
        info.update(status="failed", global_step=training.trainer.state.global_step, error=failure_summary(exc))
        raise
    finally:
        training.stop.uninstall()
        training.clock.uninstall()
        engine.close()
    return status


def save(setup: RunSetup, training: Training, policy: LoadedPolicy, prepared: Prepared, engine: RewardEngine, info: RunInfo,
         status: str, started: float) -> Path:
    """The adapter, its card, run.json and the log history; always, since an interrupted run keeps what it learned."""
    trainer = training.trainer
    totals = {k: vars(v) for k, v in engine.totals.items()}
    # every process scored its own share of the completions; after an abort the processes are no longer in step
    totals = [totals] if status == "aborted" else every_process(totals)
    adapter_dir = setup.out_dir / "adapter"
    trainer.save_model(str(adapter_dir))  # every rank: sharded setups gather here; only the main process writes
    if info.enabled:
        policy.tokenizer.save_pretrained(str(adapter_dir))
    info.update(
        status=status,
        global_step=trainer.state.global_step,
        adapter_dir=str(adapter_dir),
        train_seconds=round(time.monotonic() - started, 1),
        warnings=_kept(info.data.get("warnings") if setup.resume else None, prepared.report.warnings + training.progress.warnings),
        reward_totals=_added(info.data.get("reward_totals") if setup.resume else None, *totals),
        diagnosis=[vars(f) for f in training.progress.diagnosis.findings],
        reward_metrics=engine.reported_totals(),
    )
    if info.enabled:
        write_adapter_card(adapter_dir, info)
        (setup.out_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    setup.echo(f"saved adapter to {adapter_dir} ({status} at step {trainer.state.global_step})")
    return adapter_dir


def evaluate_after(evals: EvalPlan | None, training: Training, policy: LoadedPolicy, info: RunInfo, status: str) -> None:
    """The held-out evaluation's second half, on the trained policy, when the run finished."""
    if evals and status == "finished" and info.enabled:
        evals.run("after", training.trainer.model, policy.tokenizer)
        info.update(evaluation=evals.summary())


def report(setup: RunSetup, info: RunInfo, training: Training, evals: EvalPlan | None, status: str, started: float) -> None:
    """report.md with the reward curves and the evaluation; the run's total time; how to resume an aborted run."""
    if setup.cfg.report and info.enabled:
        path = write_report(setup.out_dir, info.data, reward_history(training, setup.resume), evals)
        setup.echo(f"report: {path}")
    info.update(total_seconds=round(time.monotonic() - started, 1))
    if info.enabled and info.data.get("adapter_dir"):
        write_adapter_card(Path(info.data["adapter_dir"]), info)  # the cards and the adapter's run.json, with the evaluation after
    if status == "aborted":
        from grpo_core.train.callbacks import abort_message  # deferred: transformers at its top

        print(abort_message(last_checkpoint(setup.cfg.output_dir)), file=sys.stderr)


def reward_history(training: Training, resumed: bool) -> list[dict]:
    """The logged steps for the report: a resumed run's come from the trainer's state, which its checkpoint
    carried from the steps before the resume (the progress callback saw only this process's)."""
    if not resumed:
        return training.progress.history
    return [{"step": h["step"], **{k: v for k, v in h.items() if isinstance(v, (int, float))}}
            for h in training.trainer.state.log_history if "reward" in h]


def _kept(recorded: list[str] | None, new: list[str]) -> list[str]:
    """A resumed run's warnings: the recorded ones, then the new ones not already there."""
    out = list(recorded or [])
    return out + [w for w in new if w not in out]


def _added(recorded: dict[str, dict] | None, *new: dict[str, dict]) -> dict[str, dict]:
    """The run's reward totals: the counts of every process of the run (before a resume, and each of this
    run's processes: each scores its own share of the completions), added up per reward."""
    out = {name: dict(stats) for name, stats in (recorded or {}).items()}
    for totals in new:
        for name, stats in totals.items():
            old = out.get(name, {})
            out[name] = {k: (old.get(k, 0) + v if isinstance(v, (int, float)) and not isinstance(v, bool) else (v if v is not None else old.get(k)))
                         for k, v in stats.items()}
    return out



def longest_first_lengths(cfg: RunConfig, dataset, tokenizer, resume: bool, echo: Echo) -> list[int] | None:
    """The training prompts' token counts when ``longest_first`` is on (None: TRL's order as it is).
    The sampler says, when training starts, which prompts the first round holds."""
    if not cfg.longest_first:
        return None
    if resume:
        # the first round has already run; the swap stays, so the resumed epoch has the interrupted run's
        # order and the batches the trainer skips are the ones it trained (not a second, different order)
        echo("longest_first: the first generation round has already run; its order is kept so the resumed epoch matches")
    return prompt_lengths(tokenizer, dataset["prompt"])


def quiet_libraries() -> None:
    """Our progress line replaces the libraries' bars and raw log dicts; no usage telemetry."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets  # deferred: heavy (datasets, pyarrow)
    import transformers  # deferred: heavy (transformers)

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
