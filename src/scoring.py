"""Log-likelihood of each answer after its context, as lm-evaluation-harness's hf backend computes it, in less compute.

What is computed (lm_eval/api/model.py `loglikelihood`, `_encode_pair`; lm_eval/models/huggingface.py):
- the context's trailing whitespace moves to the front of each continuation; context + continuation is encoded as one
  string and the continuation is its tokens after those of the context encoded alone (a merge across the boundary
  stays in the continuation's count as lm-eval counts it); the tokenizer adds its special tokens as it does by default
  (Llama's BOS, none for GPT-2), except to a text that already starts with the BOS (else EOS) token's text; an empty
  context is that token alone;
- a continuation's log-likelihood is the sum of its tokens' log-probabilities (log_softmax in fp32) given everything
  before them; a context that does not fit the model's window with the continuation is cut from the left as lm-eval
  cuts it (only the last window + 1 tokens of context + continuation, the last one not fed);
- acc's prediction is the answer of highest log-likelihood; acc_norm's divides each by its answer's length in
  characters (lm_eval/api/task.py, process_results).

How it is faster: every answer of an example is in the batch of its context, which runs through the model once; the
first token of every answer is read off the context's last position, and answers of more tokens continue from the
context's key-value cache (copied per answer), so the context is never recomputed. lm-eval runs context + answer
once per answer (except answers of one token, which its logits cache groups) and projects every position onto the
vocabulary; only the positions that score a token are projected here. Examples are batched longest context first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from src.config import UserError
from src.prompts import Request

DEFAULT_WINDOW = 2048  # lm-eval's when neither the model config nor the tokenizer gives one
TOKENIZER_INFINITY = 1_000_000_000_000_000_019_884_624_838_656  # transformers' model_max_length for "no limit"


def context_window(config, tokenizer) -> int:
    """The tokens the model reads at once, resolved as lm-eval's resolve_max_length does."""
    config = getattr(config, "text_config", None) or config
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(config, key, None) is not None:
            return int(getattr(config, key))
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit != TOKENIZER_INFINITY else DEFAULT_WINDOW


def encode_requests(tokenizer, requests: Sequence[Request]) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Each request's context tokens and each continuation's tokens, split as lm-eval splits them (module docstring)."""
    prefix_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    prefix_text = tokenizer.decode(prefix_id)
    contexts, continuations = [], []
    texts: list[str] = []  # every string to encode with the tokenizer's special tokens, in one batched call
    for request in requests:
        context = request.context.rstrip()
        moved = request.context[len(context) :]
        contexts.append(context)
        continuations.append([moved + c for c in request.continuations])
        texts += [context] + [context + c for c in continuations[-1]] if context else []

    def encode(batch: list[str]) -> list[list[int]]:
        plain = [t for t in batch if not t.startswith(prefix_text)]
        ids = iter(tokenizer(plain, add_special_tokens=True)["input_ids"] if plain else [])
        return [next(ids) if not t.startswith(prefix_text) else tokenizer(t, add_special_tokens=False)["input_ids"] for t in batch]

    encoded = iter(encode(texts))
    context_ids, continuation_ids = [], []
    for context, conts in zip(contexts, continuations):
        if not context:  # lm-eval: the prefix token is the context; a continuation that starts with it starts after it
            context_ids.append([prefix_id])
            conts_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in conts]
            continuation_ids.append([ids[1:] if ids[:1] == [prefix_id] else ids for ids in conts_ids])
            continue
        ctx = next(encoded)
        context_ids.append(ctx)
        continuation_ids.append([next(encoded)[len(ctx) :] for _ in conts])
    for i, conts in enumerate(continuation_ids):
        if not all(conts):
            raise UserError(f"example {i}: an answer encodes to no tokens after its context ({requests[i].continuations}): check task.prompt.choices")
    return context_ids, continuation_ids


@dataclass
class Unit:
    """A context and the answers scored after it: one per example, or (a context cut to fit the window, which cuts
    it differently for answers of different lengths) one per answer."""

    example: int
    choices: list[int]
    context: list[int]
    continuations: list[list[int]]


def units(context_ids: list[list[int]], continuation_ids: list[list[list[int]]], window: int) -> list[Unit]:
    out = []
    for example, (context, conts) in enumerate(zip(context_ids, continuation_ids)):
        cut = [max(0, len(context) + len(c) - (window + 1)) for c in conts]
        if any(len(c) > window for c in conts):
            raise UserError(f"example {example}: an answer of {max(map(len, conts))} tokens does not fit the model's window of {window}")
        if not any(cut):
            out.append(Unit(example, list(range(len(conts))), context, conts))
        else:
            out += [Unit(example, [i], context[cut[i] :], [c]) for i, c in enumerate(conts)]
    return out


@torch.no_grad()
def loglikelihoods(model: torch.nn.Module, context_ids: list[list[int]], continuation_ids: list[list[list[int]]], batch_size: int, window: int, progress=None) -> np.ndarray:
    """[examples, answers] log-likelihoods (float64) of each answer's tokens after its example's context."""
    device = next(model.parameters()).device
    result = np.zeros((len(context_ids), max((len(c) for c in continuation_ids), default=0)))
    todo = sorted(units(context_ids, continuation_ids, window), key=lambda u: -len(u.context))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        for unit, choice, ll in _score_batch(model, batch, device):
            result[unit.example, choice] = ll
        if progress is not None:
            progress(len(batch))
    return result


def _score_batch(model: torch.nn.Module, batch: list[Unit], device: torch.device):
    """(unit, choice, log-likelihood) of every answer of a batch of units: contexts once (right-padded, as lm-eval pads),
    then the answers of several tokens from the contexts' cache."""
    lengths = torch.tensor([len(u.context) for u in batch], device=device)
    contexts = _pad([u.context for u in batch], device)
    answers = [(b, i, c) for b, u in enumerate(batch) for i, c in enumerate(u.continuations)]
    longer = [(b, c) for b, _, c in answers if len(c) > 1]
    out = model(input_ids=contexts, use_cache=bool(longer), logits_to_keep=(lengths - 1)[:, None])
    first = torch.log_softmax(out.logits[:, 0].float(), dim=-1)  # [units, vocab]: predicts every answer's first token
    scores = first[torch.tensor([b for b, _, _ in answers], device=device), torch.tensor([c[0] for _, _, c in answers], device=device)]
    if longer:
        rows = torch.tensor([b for b, _ in longer], device=device)
        feed = _pad([c[:-1] for _, c in longer], device)  # each answer's tokens but its last, after its context
        fed = feed.shape[1]
        cache = out.cache
        cache.batch_select_indices(rows)
        # the cache holds each context's right padding: masked; the answer's positions continue from its context's end
        context_mask = torch.arange(contexts.shape[1], device=device)[None, :] < lengths[rows, None]
        answer_mask = torch.arange(fed, device=device)[None, :] < torch.tensor([len(c) - 1 for _, c in longer], device=device)[:, None]
        positions = torch.where(answer_mask, lengths[rows, None] + torch.arange(fed, device=device)[None, :], 0)  # padding: any position the model has
        logits = model(input_ids=feed, cache=cache, attention_mask=torch.cat([context_mask, answer_mask], dim=1).long(), position_ids=positions).logits
        targets = _pad([c[1:] for _, c in longer], device)
        rest = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]
        scores[torch.tensor([k for k, (_, _, c) in enumerate(answers) if len(c) > 1], device=device)] += (rest * answer_mask).sum(-1)
    for (b, i, _), ll in zip(answers, scores.tolist()):
        yield batch[b], batch[b].choices[i], ll


def _pad(rows: list[list[int]], device: torch.device) -> torch.Tensor:
    """Right-padded token ids; the padding is never read (causal attention, masked in the cache)."""
    out = torch.zeros((len(rows), max(len(r) for r in rows)), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


def predictions(lls: np.ndarray, choices: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """acc's and acc_norm's predicted answer per example (lm-eval: argmax of ll, and of ll / the answer's characters)."""
    return lls.argmax(-1), (lls / np.array([float(len(c)) for c in choices])).argmax(-1)
