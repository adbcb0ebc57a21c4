"""One lm-evaluation-harness task, run in-process on the already-loaded model.

`lm_task` names one lm-eval task (not a group or tag):

- a task of ours: an lm-eval task YAML under `evals/tasks/` with local data. It
  runs offline. Relative `data_files` / `data_dir` in it are relative to the
  YAML file (lm-eval itself would resolve them against the working directory),
  and the runner makes them absolute before lm-eval sees the config;
- a built-in lm-eval task (`gsm8k`, `arc_easy`, `ifeval`, ...): its data comes
  from the Hugging Face Hub, so the first run needs network (later runs use the
  datasets cache). Offline it fails with one line saying so. `ifeval` also
  needs the `hub` extra (`pip install 'harness[hub]'`) and NLTK's `punkt_tab`.

The model is wrapped as `HFLM(pretrained=model, tokenizer=..., batch_size=...)`
and scored by `lm_eval.simple_evaluate` with lm-eval's own prompts, filters
and metrics, so numbers match the `lm_eval` CLI. Two things keep the
in-process call as fast as the CLI (lm-eval issue #3207 reports 4x slower):

- `simple_evaluate(batch_size=...)` only reaches models it builds from a name;
  a model object keeps the batch size it was constructed with, and `HFLM`'s
  default is 1. The batch size therefore goes to `HFLM` itself;
- lm-eval's `TaskManager` indexes all ~14.7k built-in task YAMLs unless told
  otherwise (`simple_evaluate` builds such a manager when given none). Ours
  indexes only `evals/tasks/` for local tasks (`include_defaults=False`) and,
  for a built-in task, only the lm-eval folder that holds its YAML.

`python -m harness.bench --section lm_eval_overhead` measures both against the CLI.

Reported numbers keep their provenance: the task version, a hash of the task
config as run (generation settings included), a hash of the data (sha256 of
the files for local tasks, the datasets fingerprint and revision for hub
tasks), and per-item scores from lm-eval's logged samples (item id = lm-eval's
`doc_id`), so the orchestrator can bootstrap CIs and re-score clean subsets.
Metric names drop lm-eval's filter suffix (`exact_match,strict-match` is
reported as `exact_match` with `filter: strict-match` in `info`); `filter`
picks which filter's scores are reported, by default the task's first.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

from harness.errors import HarnessError, did_you_mean
from harness.evaluate import RUNNERS, EvalContext, EvalItem, Runner, TaskResult
from harness.evaluate.lm_eval_tasks import (LoadedTask, Unreachable, config_hash, first_metric, load_task,
                                            package_version, quiet)
from harness.schema import param

INVALID = {"", "[invalid]"}   # what lm-eval's extraction filters leave when they find no answer


@RUNNERS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class LmEvalTask(Runner):
    """One lm-eval task (ours under evals/tasks/, or a built-in one from the hub), scored in-process."""

    name = "lm_eval"
    version = 1

    lm_task: str = param(help="lm-eval task name: a YAML under evals/tasks/ (offline) or a built-in task (hub)")
    filter: str = param("", help="lm-eval filter whose scores are reported (defaults to the task's first)")
    num_fewshot: int | None = param(None, ge=0, help="few-shot examples (defaults to the task's own setting)")
    apply_chat_template: bool = param(True, help="render prompts with the model's chat template")
    gen_kwargs: dict[str, Any] = param({}, help="generation settings merged over the task's generation_kwargs")
    max_new_tokens: int | None = param(None, ge=1, help="overrides the task's max_gen_toks when set")
    bootstrap_iters: int = param(100_000, ge=0,
                                 help="lm-eval's bootstrap draws for non-mean metrics' stderr (0: none)")

    @property
    def task_name(self) -> str:
        return self.task or self.lm_task

    @property
    def primary(self) -> str:
        return self.metric or first_metric(self.lm_task)

    # ------------------------------------------------------------------ protocol

    def items(self, ctx: EvalContext) -> list[EvalItem] | None:
        try:
            loaded = load_task(self.lm_task)
        except Unreachable:
            return None
        task = loaded.task
        docs = list(task.eval_docs)
        limit = ctx.limit or self.limit
        out = []
        for doc_id, doc in enumerate(docs[:limit] if limit else docs):
            out.append(EvalItem(str(doc_id), _text(task.doc_to_text(doc)), _answer(task, doc)))
        return out

    def evaluate(self, ctx: EvalContext) -> TaskResult:
        import lm_eval

        loaded = load_task(self.lm_task)
        name = loaded.task.task_name if hasattr(loaded.task, "task_name") else self.lm_task
        self._check_names(loaded.task.config)   # before the expensive part
        gen_kwargs = dict(self.gen_kwargs)
        if self.max_new_tokens:
            gen_kwargs["max_gen_toks"] = self.max_new_tokens
        limit = ctx.limit or self.limit
        batch_size = self.device_batch_size(ctx.device)
        start = time.perf_counter()
        with quiet("lm_eval"):
            # the batch size goes to HFLM: simple_evaluate's own only reaches models it loads by name (#3207)
            lm = ctx.generator.lm_eval_model(batch_size) if getattr(ctx.generator, "backend", "") == "tinker" \
                else timed_hflm()(pretrained=ctx.model, tokenizer=ctx.tokenizer, batch_size=batch_size)
            lm.progress_label, lm.progress_log = self.task_name, ctx.log
            out = lm_eval.simple_evaluate(
                model=lm, model_args={"pretrained": ctx.model_name}, tasks=[loaded.task],
                task_manager=loaded.manager, num_fewshot=self.num_fewshot, batch_size=batch_size,
                limit=limit, log_samples=True, apply_chat_template=self.apply_chat_template,
                gen_kwargs=gen_kwargs or None, bootstrap_iters=self.bootstrap_iters)
        wall = time.perf_counter() - start
        return self._result(out, name, loaded, lm, ctx, wall, batch_size)

    def device_batch_size(self, device: str) -> int | str:
        """The task's `batch_size` on a CPU; on a GPU `gpu_batch_size`, or lm-eval's `auto` (the largest
        batch that runs without running out of memory, found by lm-eval)."""
        if not str(device).startswith("cuda"):
            return self.batch_size
        return self.gpu_batch_size or "auto"

    def _check_names(self, config) -> None:
        filters = [f["name"] for f in config.filter_list or [] if isinstance(f, dict) and "name" in f] or ["none"]
        if self.filter and self.filter not in filters:
            raise HarnessError(f"task '{self.task_name}': lm-eval task '{self.lm_task}' has no filter "
                               f"'{self.filter}'{did_you_mean(self.filter, filters)}; fix `filter:` in the suite")
        metrics = [m["metric"] for m in config.metric_list or [] if isinstance(m.get("metric"), str)]
        if self.metric and metrics and self.metric not in metrics:
            raise HarnessError(f"task '{self.task_name}': lm-eval task '{self.lm_task}' reports "
                               f"{', '.join(metrics)}, not '{self.metric}'; fix `metric:` in the suite")

    # ------------------------------------------------------------------ results

    def _result(self, out: dict, name: str, loaded: LoadedTask, lm, ctx: EvalContext, wall: float,
                batch_size: int | str) -> TaskResult:
        config = out["configs"][name]
        filters = [f["name"] for f in config.get("filter_list") or []] or ["none"]
        chosen = self.filter or filters[0]
        if chosen not in filters:
            raise HarnessError(f"task '{self.task_name}': lm-eval task '{self.lm_task}' has no filter '{chosen}'"
                               f"{did_you_mean(chosen, filters)}; fix `filter:` in the suite")
        metrics, stderr = {}, {}
        for key, value in out["results"][name].items():
            metric, _, flt = key.partition(",")
            if flt != chosen:
                continue
            if metric.endswith("_stderr"):
                stderr[metric.removesuffix("_stderr")] = _number(value)
            else:
                metrics[metric] = _number(value)
        order = [m["metric"] for m in config.get("metric_list") or [] if isinstance(m.get("metric"), str)]
        metrics = {m: metrics[m] for m in sorted(metrics, key=lambda m: order.index(m) if m in order else len(order))}
        primary = self.metric or next(iter(metrics), "")
        if primary not in metrics:
            raise HarnessError(f"task '{self.task_name}': lm-eval task '{self.lm_task}' reports "
                               f"{', '.join(metrics) or 'no metrics'}, not '{primary}'; fix `metric:` in the suite")

        samples = sorted((s for s in out["samples"][name] if s["filter"] == chosen), key=lambda s: s["doc_id"])
        per_item, aggregate_only = {}, []
        for metric in metrics:
            values = [s.get(metric) for s in samples]
            if all(v is None or _is_score(v) for v in values):
                per_item[metric] = [None if v is None or math.isnan(float(v)) else float(v) for v in values]
            else:
                aggregate_only.append(metric)   # e.g. bleu: per-sample (reference, prediction) pairs
        generate = config.get("output_type") == "generate_until"
        unparseable = sum(_text(_first(s["filtered_resps"])).strip() in INVALID for s in samples) if generate else 0
        seconds = max(lm.request_seconds, 1e-9)
        throughput = {"examples_per_s": round(len(samples) / seconds, 3), "seconds": round(lm.request_seconds, 3),
                      "wall_seconds": round(wall, 3)}
        if generate:
            throughput["tokens_per_s"] = round(lm.generated_tokens / seconds, 2)
        return TaskResult(
            metrics=metrics, item_ids=[str(s["doc_id"]) for s in samples], per_item=per_item, stderr=stderr,
            counts={"items": len(samples), "unparseable": unparseable}, throughput=throughput,
            version=str(out["versions"][name]), data_hash=loaded.data_hash,
            info={"lm_task": self.lm_task, "filter": chosen, "filters": filters, "primary_metric": primary,
                  "config_hash": config_hash(config, loaded), "dataset": loaded.dataset,
                  "num_fewshot": out.get("n-shot", {}).get(name), "apply_chat_template": self.apply_chat_template,
                  "generation_kwargs": config.get("generation_kwargs"), "batch_size": batch_size,
                  "higher_is_better": {m: out.get("higher_is_better", {}).get(name, {}).get(m) for m in metrics},
                  "seeds": {k: out.get("config", {}).get(k) for k in ("random_seed", "numpy_seed", "torch_seed",
                                                                      "fewshot_seed")},
                  "aggregate_only": aggregate_only, "lm_eval_version": package_version("lm_eval"),
                  "source": loaded.source},
            samples=[_sample_row(s, metrics) for s in samples[:5]])


# ---------------------------------------------------------------------- the model wrapper

@functools.lru_cache(maxsize=1)
def timed_hflm():
    """lm-eval's HFLM, timing the requests it answers (generation or scoring), counting the
    tokens it generates (up to each row's end-of-sequence; padding is not counted) and showing
    generation progress (`harness.evaluate.progress`) under `progress_label`."""
    from lm_eval.models.huggingface import HFLM

    from harness.evaluate.progress import Progress

    class TimedHFLM(HFLM):
        request_seconds = 0.0
        generated_tokens = 0
        _depth = 0
        progress_label = "lm_eval"
        progress_log = print
        _progress = None

        def _model_generate(self, context, *args, **kwargs):
            out = super()._model_generate(context, *args, **kwargs)
            new = out[:, context.shape[1]:]
            stops = [t for t in (self.tokenizer.pad_token_id, self.eot_token_id) if t is not None]
            tokens = 0
            for row in new.tolist():
                ends = [row.index(t) for t in stops if t in row]
                tokens += min(ends) + 1 if ends else len(row)
            self.generated_tokens += tokens
            if self._progress is not None:
                self._progress.advance(context.shape[0], tokens)
            return out

        def _timed(self, method, requests, *args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(requests, *args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.request_seconds += time.perf_counter() - start

        def generate_until(self, requests, *args, **kwargs):
            with Progress(self.progress_label, len(requests), self.progress_log) as self._progress:
                try:
                    return self._timed(super().generate_until, requests, *args, **kwargs)
                finally:
                    self._progress = None

        def loglikelihood(self, requests, *args, **kwargs):
            return self._timed(super().loglikelihood, requests, *args, **kwargs)

        def loglikelihood_rolling(self, requests, *args, **kwargs):
            return self._timed(super().loglikelihood_rolling, requests, *args, **kwargs)

    return TimedHFLM


# ---------------------------------------------------------------------- small helpers

def _number(value) -> float | None:
    """lm-eval writes "N/A" where it computed no stderr; that, and anything else non-numeric, is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def _is_score(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, complex)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _answer(task, doc) -> str:
    """The reference answer as text: the choice text for multiple-choice indices, joined for lists."""
    target = task.doc_to_target(doc)
    if task.config.output_type == "multiple_choice" and isinstance(target, int):
        choices = task.doc_to_choice(doc)
        return str(choices[target]) if 0 <= target < len(choices) else str(target)
    if isinstance(target, list):
        return "\n".join(map(str, target))
    return _text(target)


def _sample_row(sample: dict, metrics: dict) -> dict:
    args = sample.get("arguments")
    prompt = args[0][0] if isinstance(args, list) and args and isinstance(args[0], (list, tuple)) else args
    return {"id": str(sample["doc_id"]), "prompt": _text(prompt)[-2000:],
            "output": _text(_first(_first(sample.get("resps")))), "target": _text(sample.get("target")),
            **{m: sample.get(m) for m in metrics if _is_score(sample.get(m))}}
