#!/usr/bin/env python3
"""The PyTorch peer of `pretrainzero bench train`: the same Qwen3 shape (built from
the same config.json), the same three measurements, the same thread count.

    python perf/torch_bench.py --config CONFIG.json --settings SETTINGS.json [--threads N]

`perf/compare.py` calls it with the config and settings that `bench train --json`
printed, so both sides measure the same shapes in one run. It needs only `torch`
(CPU is enough); see perf/README.md. `--device cuda` measures on the GPU instead (the
device check, perf/gpu-check.sh, does that), synchronising before every clock read.

The model is plain eager PyTorch (no torch.compile), written for speed the way a
careful user would write it: `F.scaled_dot_product_attention`, fused AdamW where
torch offers it, and the LM head applied only at response positions in the GRPO
update (as TRL's `logits_to_keep` does). The GRPO update is measured twice: on full
sequences, as TRL and verl run it, and with each group's shared prompt run once, as
the project's update does (the same numbers, checked at the start).

`--dtype bf16` is the peer of `bench train --dtype bf16`: training under
`torch.autocast(bfloat16)` with f32 master weights, generation with the weights cast
to bf16 once, as the project does.
"""

import argparse
import contextlib
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


class RmsNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["hidden_size"], c["head_dim"]
        self.h, self.kv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
        eps = c["rms_norm_eps"]
        self.input_layernorm = RmsNorm(d, eps)
        self.post_attention_layernorm = RmsNorm(d, eps)
        self.q_proj = torch.nn.Linear(d, self.h * hd, bias=False)
        self.k_proj = torch.nn.Linear(d, self.kv * hd, bias=False)
        self.v_proj = torch.nn.Linear(d, self.kv * hd, bias=False)
        self.o_proj = torch.nn.Linear(self.h * hd, d, bias=False)
        self.q_norm = RmsNorm(hd, eps)
        self.k_norm = RmsNorm(hd, eps)
        i = c["intermediate_size"]
        self.gate_proj = torch.nn.Linear(d, i, bias=False)
        self.up_proj = torch.nn.Linear(d, i, bias=False)
        self.down_proj = torch.nn.Linear(i, d, bias=False)

    def project(self, x, cos, sin):
        """Queries, keys and values `[b, heads, s, head_dim]` of a block, after RoPE."""
        b, s, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(h).view(b, s, self.h, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(h).view(b, s, self.kv, self.hd)).transpose(1, 2)
        v = self.v_proj(h).view(b, s, self.kv, self.hd).transpose(1, 2)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v

    def finish(self, x, q, k, v, mask=None, causal=False):
        """Attention of `q` over `k`/`v`, then the residual and the MLP."""
        b, s, _ = x.shape
        groups = self.h // self.kv
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        x = x + self.o_proj(attn.transpose(1, 2).reshape(b, s, self.h * self.hd))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

    def forward(self, x, cos, sin, cache=None, start=0):
        s = x.shape[1]
        q, k, v = self.project(x, cos, sin)
        if cache is not None:
            keys, values = cache
            keys[:, :, start : start + s] = k
            values[:, :, start : start + s] = v
            k, v = keys[:, :, : start + s], values[:, :, : start + s]
        # Causal over the whole block during prefill/training; a decode step sees all keys.
        return self.finish(x, q, k, v, causal=s > 1)


class Qwen3(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = torch.nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = torch.nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RmsNorm(c["hidden_size"], c["rms_norm_eps"])
        assert c.get("tie_word_embeddings", True), "the benchmark presets tie the head"
        hd = c["head_dim"]
        theta = c.get("rope_theta") or c.get("rope_parameters", {}).get("rope_theta", 10000.0)
        self.register_buffer(
            "inv_freq", 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        )
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def rope(self, start, s):
        pos = torch.arange(start, start + s, dtype=torch.float32, device=self.inv_freq.device)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        # In the weights' type: f32 in training (autocast casts where it multiplies),
        # bf16 when generation runs on bf16 weights.
        dtype = self.embed_tokens.weight.dtype
        return emb.cos()[None, None].to(dtype), emb.sin()[None, None].to(dtype)

    def hidden(self, ids, caches=None, start=0):
        cos, sin = self.rope(start, ids.shape[1])
        x = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i], start)
        return self.norm(x)

    def head(self, h):
        return h @ self.embed_tokens.weight.t()


DEVICE = torch.device("cpu")
BF16 = False


def compute():
    """The training passes' precision: autocast to bf16 under --dtype bf16."""
    if BF16:
        return torch.autocast(DEVICE.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def weights_to_bf16(model):
    """Generation's weights in bf16, cast once; the rotary frequencies stay f32."""
    inv_freq = model.inv_freq.clone()
    model.to(torch.bfloat16)
    model.inv_freq = inv_freq


def synchronize():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(repeats, fn):
    fn()
    times = []
    for _ in range(max(1, repeats)):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_ids(row, length, vocab):
    return [(row * 7919 + t * 104729 + 1) % vocab for t in range(length)]


def adamw(model):
    kwargs = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    try:
        return torch.optim.AdamW(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(model.parameters(), **kwargs)


def bench_pretrain(model, opt, s, vocab):
    chunks = torch.tensor(
        [synthetic_ids(b, s["seq_len"] + 1, vocab) for b in range(s["batch_size"])],
        device=DEVICE,
    )
    inputs, targets = chunks[:, :-1], chunks[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        with compute():
            logits = model.head(model.hidden(inputs))
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    sec = median_seconds(s["repeats"], step)
    tokens = s["batch_size"] * s["seq_len"]
    return {"name": "pretrain step", "ms": sec * 1e3, "tokens_per_s": tokens / sec}


def scores_at(model, hidden, ids, prompt_len):
    """Log-prob of each response token and the entropy at its position, from the final
    hidden states `hidden` of the positions that predict the response."""
    logp = torch.log_softmax(model.head(hidden).float(), dim=-1)
    picked = logp.gather(-1, ids[:, prompt_len:, None]).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return picked, entropy


def response_scores(model, ids, prompt_len):
    """Log-prob of each response token and the entropy at its position."""
    return scores_at(model, model.hidden(ids[:, :-1])[:, prompt_len - 1 :], ids, prompt_len)


def response_scores_shared(model, ids, prompt_len, group):
    """`response_scores` with each group's prompt run once, as the project's update
    does: the prompt but its last token on one row per group of `group` consecutive
    sequences, then every sequence's last prompt token and response attending to its
    group's keys and values."""
    past = prompt_len - 1
    prefix, chunk = ids[::group, :past], ids[:, past:-1]
    s = chunk.shape[1]
    cos_p, sin_p = model.rope(0, past)
    cos_c, sin_c = model.rope(past, s)
    xp, xc = model.embed_tokens(prefix), model.embed_tokens(chunk)
    # Chunk token i sees the whole prefix and chunk tokens up to itself.
    mask = torch.ones(s, past + s, dtype=torch.bool, device=ids.device).tril(diagonal=past)
    for layer in model.layers:
        qp, kp, vp = layer.project(xp, cos_p, sin_p)
        qc, kc, vc = layer.project(xc, cos_c, sin_c)
        k = torch.cat((kp.repeat_interleave(group, dim=0), kc), dim=2)
        v = torch.cat((vp.repeat_interleave(group, dim=0), vc), dim=2)
        xc = layer.finish(xc, qc, k, v, mask=mask)
        xp = layer.finish(xp, qp, kp, vp, causal=True)
    return scores_at(model, model.norm(xc), ids, prompt_len)


def bench_grpo(model, opt, s, vocab, shared_prompt=False):
    n, p, r = s["rl_sequences"], s["prompt_len"], s["response_len"]
    # Consecutive sequences share a prompt, as a GRPO group's answers do (older
    # settings files without the key had one prompt per sequence).
    g = s.get("group_size", 1)
    ids = torch.tensor(
        [synthetic_ids(i // g, p, vocab) + synthetic_ids(i + 100003, r, vocab) for i in range(n)],
        device=DEVICE,
    )
    adv = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(n)], device=DEVICE)
    minis, micro = s["ppo_mini_batches"], s["micro_batch"]
    per_mini = math.ceil(n / minis)
    eps_low, eps_high = 0.2, 0.28

    def in_compute(fn):
        def run(batch, p):
            with compute():
                return fn(batch, p)
        return run

    if shared_prompt:
        if g < 2 or micro % g or per_mini % g or n % g:
            return None
        scores = in_compute(lambda batch, p: response_scores_shared(model, batch, p, g))
        with torch.no_grad():  # the peer's own check: the same numbers as the plain pass
            plain = in_compute(lambda batch, p: response_scores(model, batch, p))
            for a, b in zip(scores(ids[:micro], p), plain(ids[:micro], p)):
                assert torch.allclose(a, b, atol=0.1 if BF16 else 1e-4), (a - b).abs().max()
    else:
        scores = in_compute(lambda batch, p: response_scores(model, batch, p))

    def update():
        with torch.no_grad():
            old = [scores(ids[i : i + micro], p)[0] for i in range(0, n, micro)]
        old = torch.cat(old)
        for m in range(0, n, per_mini):
            opt.zero_grad(set_to_none=True)
            tokens = min(per_mini, n - m) * r
            for i in range(m, min(m + per_mini, n), micro):
                j = min(i + micro, m + per_mini, n)
                new, _ = scores(ids[i:j], p)
                ratio = (new - old[i:j]).exp()
                a = adv[i:j, None]
                surrogate = torch.minimum(ratio * a, ratio.clamp(1 - eps_low, 1 + eps_high) * a)
                (-surrogate.sum() / tokens).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

    sec = median_seconds(s["repeats"], update)
    name = "GRPO update, shared prompt" if shared_prompt else "GRPO update"
    return {"name": name, "ms": sec * 1e3, "tokens_per_s": n * r / sec}


def bench_generation(model, s, vocab):
    c = model.c
    b, p, r = s["generation_batch"], s["prompt_len"], s["response_len"]
    prompts = torch.tensor([synthetic_ids(i, p, vocab) for i in range(b)], device=DEVICE)

    @torch.no_grad()
    def generate(new_tokens):
        shape = (b, c["num_key_value_heads"], p + new_tokens, c["head_dim"])
        dtype = model.embed_tokens.weight.dtype
        caches = [
            (torch.empty(shape, device=DEVICE, dtype=dtype), torch.empty(shape, device=DEVICE, dtype=dtype))
            for _ in model.layers
        ]
        ids, start = prompts, 0
        for _ in range(new_tokens):
            h = model.hidden(ids, caches, start)
            probs = torch.softmax(model.head(h[:, -1]).float(), dim=-1)
            start += ids.shape[1]
            ids = torch.multinomial(probs, 1)

    prefill = median_seconds(s["repeats"], lambda: generate(1))
    full = median_seconds(s["repeats"], lambda: generate(r))
    steps = r - 1
    decode = max(full - prefill, 1e-9)
    return [
        {"name": "prefill", "ms": prefill * 1e3, "tokens_per_s": b * p / prefill},
        {"name": "decode", "ms": decode / steps * 1e3, "tokens_per_s": b * steps / decode},
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="HF config.json of the shape")
    ap.add_argument("--settings", required=True, help="JSON of the benchmark settings")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="bf16: autocast training with f32 master weights, bf16 generation")
    ap.add_argument("--generation-batches", default=None,
                    help="only prefill and decode, at each of these batch sizes (comma-separated)")
    args = ap.parse_args()
    global DEVICE, BF16
    DEVICE = torch.device(args.device)
    BF16 = args.dtype == "bf16"
    with open(args.config) as f:
        config = json.load(f)
    with open(args.settings) as f:
        settings = json.load(f)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab = config["vocab_size"]
    model = Qwen3(config).to(DEVICE)
    if args.generation_batches:
        model.eval()
        if BF16:
            weights_to_bf16(model)
        rows = []
        for batch in map(int, args.generation_batches.split(",")):
            prefill, decode = bench_generation(model, dict(settings, generation_batch=batch), vocab)
            rows.append({"batch": batch, "prefill_ms": prefill["ms"], "decode_ms_per_step": decode["ms"],
                         "decode_tokens_per_s": decode["tokens_per_s"]})
        print(json.dumps({"torch": torch.__version__, "device": str(DEVICE), "rows": rows}))
        return
    opt = adamw(model)
    model.train()
    out = [bench_pretrain(model, opt, settings, vocab), bench_grpo(model, opt, settings, vocab)]
    # The same update with each group's prompt run once (what the project's update
    # does); absent when the settings have no groups to share.
    shared = bench_grpo(model, opt, settings, vocab, shared_prompt=True)
    out += [shared] if shared else []
    model.eval()
    if BF16:
        weights_to_bf16(model)
    out += bench_generation(model, settings, vocab)
    print(json.dumps({
        "torch": torch.__version__,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "device": str(DEVICE),
        "parameters": sum(p.numel() for p in model.parameters()),
        "measurements": out,
    }))


if __name__ == "__main__":
    main()
