"""Zero- and few-shot evaluation of a base language model, without training: each answer of a classification task
scored by its log-likelihood after the task's prompt (src.prompts, src.scoring), as lm-evaluation-harness scores it.

    python -m src.zeroshot task=rte model=gpt2 num_fewshot=0
    python -m src.zeroshot -m task=rte,cola,sst2 model=gpt2,pythia-160m num_fewshot=0,5 seed=1,2,3

The prediction is the answer of highest log-likelihood (`acc`), and of highest log-likelihood per character of the
answer (`acc_norm`, lm-eval's length-normalised variant); the task's own metrics (CoLA MCC, MRPC F1, ...) score acc's
predictions. A run writes what every run writes (config.yaml, status.json, metrics.json with `protocol: zeroshot`
and `num_fewshot`, predictions_dev.tsv with each answer's log-likelihood, the classification report, the error
analysis, a W&B run), so that src.report puts it beside fine-tuned runs of the same model as a row of its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src import lifecycle
from src.config import Config, UserError

if TYPE_CHECKING:
    import datasets
    import torch
    from transformers import PreTrainedTokenizerBase

    from src.loop import EvalResult

log = logging.getLogger("basebench")
PROTOCOL = "zeroshot"  # metrics.json's `protocol` (src.train's runs: finetune); few-shot runs too, with num_fewshot > 0
JOB_TYPE = "zeroshot"  # the W&B job_type of a run (logger.job_type's default here; src.tracking names such runs by it)


@dataclass
class Scorer:
    """A decoder with its LM head, its tokenizer and the tokens it reads at once."""

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    window: int


def load_scorer(cfg: Config, device: torch.device | str = "cpu") -> Scorer:
    """cfg.model as a language model (an encoder is refused in one line), on `device`."""
    from src.model import load_language_model, load_tokenizer
    from src.scoring import context_window

    tokenizer = load_tokenizer(cfg.model)
    model = load_language_model(cfg.model, tokenizer).to(device)
    return Scorer(model, tokenizer, context_window(model.config, tokenizer))


@dataclass
class ScoredSplit:
    """One scored split: its examples (text fields, label, context and answer tokens) and [examples, answers]
    log-likelihoods."""

    examples: datasets.Dataset
    loglikelihoods: np.ndarray


def score(cfg: Config, scorer: Scorer, progress=None) -> dict[str, dict[str, ScoredSplit]]:
    """Every scored split of cfg.task ({"dev": {suffix: ...}, "test": {"": ...} or {}}) at trainer.eval_batch_size."""
    from src.data import prompted_data, tokenizer_fingerprint
    from src.scoring import loglikelihoods

    data = prompted_data(cfg, scorer.tokenizer, tokenizer_fingerprint(scorer.tokenizer), scorer.window)
    return {
        role: {
            suffix: ScoredSplit(split, loglikelihoods(scorer.model, split["context_ids"][:], split["continuation_ids"][:], cfg.trainer.eval_batch_size, scorer.window, progress))
            for suffix, split in splits.items()
        }
        for role, splits in data.items()
    }


def evaluation(cfg: Config, splits: dict[str, ScoredSplit]) -> tuple[EvalResult, dict[str, float], dict[str, np.ndarray]]:
    """The task's own metrics of scored splits (suffix -> split) on acc's predictions, as a fine-tuned run's (the
    log-likelihoods stand for the logits: the error analysis' probability is their softmax over the answers), and
    lm-eval's acc and acc_norm (acc_mm, acc_norm_mm for MNLI's mismatched dev), and acc_norm's predictions per suffix."""
    from src.loop import EvalResult
    from src.scoring import predictions
    from src.task_types import task_type

    kind = task_type(cfg.task)
    metrics, choice_metrics, preds, norm_preds, labels, logits = {}, {}, {}, {}, {}, {}
    for suffix, split in splits.items():
        gold = np.asarray(split.examples["label"][:], dtype=np.int64)
        acc, acc_norm = predictions(split.loglikelihoods, cfg.task.prompt.choices)
        choice_metrics |= {f"acc{suffix}": float((acc == gold).mean()), f"acc_norm{suffix}": float((acc_norm == gold).mean())}
        metrics |= kind.metrics(cfg.task, gold, acc, suffix)
        preds[suffix], norm_preds[suffix], labels[suffix], logits[suffix] = acc, acc_norm, gold, split.loglikelihoods
    return EvalResult(metrics, preds, labels, logits), choice_metrics, norm_preds


def check_task(cfg: Config) -> None:
    """Only a classification task with a prompt can be scored zero-shot: else one line, before the model loads."""
    from src.task_types import task_type

    task = cfg.task
    if not task_type(task).zero_shot:
        raise UserError(f"task {task.name} is a {task.type} task: zero- and few-shot scoring picks one of a classification task's answers (task.prompt.choices)")
    if task.prompt.template is None:
        raise UserError(f"task {task.name} has no prompt: set task.prompt.template and task.prompt.choices (one answer per class), e.g. task.prompt.template='{{{{{task.text_fields[0]}}}}}\\nAnswer:' task.prompt.choices=[no,yes]")
    if cfg.predict:
        raise UserError("predict=true writes submission files of a fine-tuned checkpoint: src.zeroshot scores dev (and a labelled task.test_split) only")


def write_predictions(path: Path, cfg: Config, split: ScoredSplit, acc: np.ndarray, acc_norm: np.ndarray) -> None:
    """predictions_<split>.tsv: index, label and prediction (label ids; acc's) as every run's, then acc_norm's
    prediction and each answer's log-likelihood (loglik_<class>, full precision), one row per example in file order."""
    from src.analysis import write_tsv

    header = ["index", "label", "prediction", "prediction_norm", *(f"loglik_{name}" for name in cfg.task.label_names)]
    gold = split.examples["label"][:]
    write_tsv(path, header, [[i, int(g), int(p), int(n), *(repr(float(ll)) for ll in lls)] for i, (g, p, n, lls) in enumerate(zip(gold, acc, acc_norm, split.loglikelihoods))])


def run(ctx: lifecycle.RunContext) -> float:
    """Score the task's dev splits (and its labelled test split), write the run directory; returns the dev main
    metric (for sweepers)."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from src.analysis import publish_results
    from src.finetune import count_parameters
    from src.outputs import metrics_record

    started = time.perf_counter()
    cfg, run_dir = ctx.cfg, ctx.dir
    check_task(cfg)
    accelerator = lifecycle.make_accelerator(cfg)
    set_seed(cfg.seed)  # a tiny model is random: its weights come from the seed
    scorer = load_scorer(cfg, accelerator.device)
    num_parameters, _ = count_parameters(scorer.model)
    log.info(f"{cfg.model.name}: {num_parameters:,} parameters, a window of {scorer.window} tokens; {cfg.task.name}, {cfg.num_fewshot}-shot")
    with tqdm(desc=f"{cfg.task.name} {cfg.num_fewshot}-shot", unit="context", disable=not cfg.trainer.progress_bar) as bar:
        scoring_started = time.perf_counter()
        scored = score(cfg, scorer, progress=bar.update)
        scoring_s = time.perf_counter() - scoring_started
    dev, dev_scores, dev_norm = evaluation(cfg, scored["dev"])
    test, test_scores, test_norm = evaluation(cfg, scored["test"]) if scored["test"] else (None, None, None)
    examples = sum(len(split.examples) for splits in scored.values() for split in splits.values())
    metrics = metrics_record(
        cfg,
        dev,
        test,
        protocol=PROTOCOL,
        num_fewshot=cfg.num_fewshot,
        finetune="none",  # nothing trains
        selection_split="none",  # no checkpoint is chosen
        selection=None,
        zeroshot={"dev": dev_scores, "test": test_scores},  # lm-eval's acc and acc_norm
        prompt=asdict(cfg.task.prompt),
        examples_scored=examples,
        examples_per_second=examples / scoring_s if scoring_s > 0 else None,
        scoring_runtime_s=scoring_s,
        total_runtime_s=time.perf_counter() - started,
        num_parameters=num_parameters,
        trainable_parameters=0,
        overrides=ctx.overrides,
    )
    if accelerator.is_main_process:
        summary = {"protocol": PROTOCOL, "num_fewshot": cfg.num_fewshot, "examples_per_second": metrics["examples_per_second"]}
        summary |= {f"best/{k}": v for k, v in dev_scores.items()} | {f"test/{k}": v for k, v in (test_scores or {}).items()}
        ctx.tracker.log({f"eval/{k}": v for k, v in (dev_scores | dev.metrics).items()}, 0)
        examples_by_split = {role: {suffix: split.examples for suffix, split in splits.items()} for role, splits in scored.items()}
        results, norms = {"dev": dev, "test": test}, {"dev": dev_norm, "test": test_norm}

        def predictions_file(path: Path, role: str, suffix: str) -> None:  # every run's columns, and each answer's log-likelihood
            write_predictions(path, cfg, scored[role][suffix], results[role].predictions[suffix], norms[role][suffix])

        report = publish_results(run_dir, cfg, dev, test, examples_by_split, metrics, ctx.tracker, summary, predictions_file)
        if report:
            log.info("per-class report:\n" + report)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in (dev_scores | dev.metrics).items())
        log.info(f"{cfg.task.name} dev, {cfg.num_fewshot}-shot: {shown}; {examples} examples in {scoring_s:.1f} s; outputs in {run_dir}")
        if test is not None:
            log.info(f"{cfg.task.name} test ({cfg.task.test_split}): " + ", ".join(f"{k}={v:.4f}" for k, v in (test_scores | test.metrics).items()))
    return dev.metrics[cfg.task.main_metric]


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(raw_cfg: DictConfig) -> float:
    """A run or one job of a multirun, in the lifecycle every entry point shares (src/lifecycle.py)."""
    overridden = {str(o).split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    if "logger.job_type" not in overridden and OmegaConf.select(raw_cfg, "logger.job_type", default=None) is not None:
        raw_cfg.logger.job_type = JOB_TYPE
    return lifecycle.hydra_job(raw_cfg, run)


if __name__ == "__main__":
    lifecycle.cli(main)
