"""Prompts: how src.zeroshot puts a classification example to a language model, in lm-evaluation-harness's format.

A task's `prompt` (TaskConfig.prompt, conf/task/*.yaml) is a Jinja template over the example's text fields and one
answer per label id (its verbalizer). The context of a scored example is its few-shot examples, each rendered and
followed by target_delimiter, its gold answer and fewshot_delimiter, then the example rendered; each answer is scored
as target_delimiter + answer after that context (src.scoring). With lm-eval's default delimiters (" ", "\\n\\n"):

    {{sentence1}}\\nQuestion: {{sentence2}} True or False?\\nAnswer: True      <- a few-shot example
                                                                            <- fewshot_delimiter
    {{sentence1}}\\nQuestion: {{sentence2}} True or False?\\nAnswer:           <- the scored example; then " True", " False"

Few-shot examples are drawn from train (else from dev) as lm-eval's ContextSampler draws them (lm_eval/api/samplers.py,
seeded by lm_eval/api/task.py's set_fewshot_seed): one random.Random(seed) for the whole split, advanced once per scored
example in file order, which samples num_fewshot + 1 examples, drops those equal to the scored one (same texts and
label: never the scored example itself), and keeps the first num_fewshot. So at the same seed (lm-eval's default
fewshot seed is 1234) both put the same examples in the same order before each scored one.

Light to import: config validation checks templates.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import jinja2
import jinja2.meta

from src.config import PromptConfig, TaskConfig, UserError


def _regex_replace(text: str, pattern: str, replacement: str, count: int = 0) -> str:
    return re.sub(pattern, replacement, text, count=count)


# lm-eval's environment (lm_eval/utils.py), so its templates carry over as they are: an unknown field is an error,
# a trailing newline is kept, and its regex_replace filter exists
_ENV = jinja2.Environment(loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_ENV.filters["regex_replace"] = _regex_replace


def template_fields(template: str) -> set[str]:
    """The example fields a template reads; a template that does not parse is a UserError."""
    try:
        return jinja2.meta.find_undeclared_variables(_ENV.parse(template))
    except jinja2.TemplateSyntaxError as e:
        raise UserError(f"task.prompt.template is not a valid Jinja template: {e.message} (line {e.lineno})") from None


def check_prompt(task: TaskConfig) -> None:
    """The prompt of a classification task, at start-up (after each field's rule, src.config: a non-empty template,
    distinct non-empty answers): a template and its choices come together, the template reads only the task's text
    fields, one answer per class."""
    prompt = task.prompt
    if prompt.template is None and prompt.choices is None:
        return
    if prompt.template is None or prompt.choices is None:
        missing = "template" if prompt.template is None else "choices"
        raise UserError(f"task.prompt.{missing} is not set: a prompt needs a template and its answer choices (e.g. task.prompt.choices=[no,yes])")
    unknown = sorted(template_fields(prompt.template) - set(task.text_fields))
    if unknown:
        raise UserError(f"task.prompt.template reads {', '.join(unknown)}, which task {task.name} does not have: its fields are {', '.join(task.text_fields)}")
    check_choices(task, task.label_names)


def check_choices(task: TaskConfig, label_names: list[str] | None) -> None:
    """One answer per class (label names inferred from train are known only once the data is read)."""
    if label_names is not None and len(task.prompt.choices) != len(label_names):
        raise UserError(f"task.prompt.choices has {len(task.prompt.choices)} answers for the {len(label_names)} classes of {task.name} ({', '.join(label_names)}): give one per class, in label order")


def render(prompt: PromptConfig, example: dict) -> str:
    return _ENV.from_string(prompt.template).render(**example)


@dataclass
class Request:
    """A scored example as text: its context, and each answer's continuation (target_delimiter + answer)."""

    context: str
    continuations: list[str]


def requests(prompt: PromptConfig, examples: list[dict], pool: list[dict], num_fewshot: int, seed: int) -> list[Request]:
    """The request of each example (text fields and label), in order, with num_fewshot solved examples of pool before it."""
    template = _ENV.from_string(prompt.template)
    continuations = [prompt.target_delimiter + choice for choice in prompt.choices]
    solved = {}  # pool index -> the rendered example with its answer, rendered once however often it is drawn
    out = []
    for example, shots in zip(examples, fewshot_draws(pool, examples, num_fewshot, seed)):
        for i in shots:
            if i not in solved:
                solved[i] = template.render(**pool[i]) + prompt.target_delimiter + prompt.choices[pool[i]["label"]] + prompt.fewshot_delimiter
        out.append(Request("".join(solved[i] for i in shots) + template.render(**example), continuations))
    return out


def fewshot_draws(pool: list[dict], examples: list[dict], n: int, seed: int) -> list[list[int]]:
    """Indices into pool of each example's n few-shot examples, as lm-eval's ContextSampler.sample(n, eval_doc) draws
    them (random.Random.sample picks the same positions from a list of indices as from the list of documents)."""
    if n == 0:
        return [[] for _ in examples]
    if n + 1 > len(pool):
        raise UserError(f"num_fewshot={n}: the few-shot pool holds only {len(pool)} examples (at least num_fewshot + 1 are drawn)")
    rnd = random.Random(seed)
    draws = []
    for example in examples:
        drawn = [i for i in rnd.sample(range(len(pool)), n + 1) if pool[i] != example][:n]
        if len(drawn) < n:  # the pool holds the scored example more than once: draw again without any copy of it
            drawn = rnd.sample([i for i in range(len(pool)) if pool[i] != example], n)
        draws.append(drawn)
    return draws
