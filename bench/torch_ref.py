#!/usr/bin/env python3
"""Our PyTorch reference: moetrain's GPT/MoE architectures in PyTorch (2.11), timed on random tokens.

The model is src/nn/gpt.cpp's: learned positions, pre-LN blocks, GELU (tanh) MLP, LM head tied to the
token embedding, vocabulary padded to a multiple of 64; block l (1-indexed) is MoE iff l % every == 0,
with our top-1 gating (src/nn/moe_router.cpp, moe_routing.cpp, DeepSpeed's defaults): f32 gate logits
(Linear(d, E), no bias), softmax, capacity = max(ceil(S / E * cf), min_capacity) with S / E rounded to f32,
tokens routed batch-major (ours: sequence-major, the same work less two reorderings: MoE.forward),
random token selection (each expert keeps the `capacity` tokens of highest priority mask x U(0, 1), the
kept tokens take slots in token order), weight = the gate probability (top-1: not renormalised), aux loss
E * sum_e mean(prob_e) * mean(mask_e) (before dropping), times 0.01. Pyramid:
a list of expert counts, one per MoE layer; Residual: a dense MLP plus the top-1 expert, mixed per token
by softmax(Linear(d, 2)).

Dispatch is index-based, as ours (no GShard one-hot (S, E, C) einsum): a slot -> token map (a scatter
of token ids, dropped tokens to a spare slot) gathers the expert-major buffer (E, C, d) with index_select;
the experts run as two batched GEMMs (baddbmm with the biases); combine gathers each token's row of the
expert output by index (expert * C + slot) and scales it by its gate weight. Every shape is static, so
torch.compile traces it without graph breaks.

Training: bf16 autocast (f32 parameters), SDPA (flash) attention, fused AdamW (0.9, 0.95, wd 0.1),
grad clip 1.0. Prints tokens/s, peak memory and MFU with FLOPs/token = 6 N_active_non_embedding
+ 6 V_padded d + 12 L d T (PaLM form, as moetrain's train_flops_per_token), peak 989 TFLOP/s (H200 bf16
dense), and a last line `torch-ref: ...` for scripts/bench-vs-torch.sh.
Usage: bench/torch_ref.py --model moe-8 --mode compile [--warmup 10 --steps 20]
"""
import argparse
import math
import time

import torch
import torch._dynamo
import torch.nn as nn
import torch.nn.functional as F

PEAK_FLOPS = 989e12

# The rows of scripts/bench-vs-torch.sh: (layers, d, heads, T, sequences per step, experts per MoE layer
# or None, residual). Vocabulary 50257 (padded to 50304) for all.
MODELS = {
    "dense-124m": (12, 768, 12, 1024, 16, None, False),
    "moe-8": (12, 768, 12, 1024, 16, [8] * 6, False),
    "moe-32": (12, 768, 12, 1024, 16, [32] * 6, False),
    "pr-moe": (12, 768, 12, 1024, 16, [16, 16, 16, 16, 32, 32], True),
    "dense-350m": (24, 1024, 16, 2048, 8, None, False),
    "pr-moe-350m": (24, 1024, 16, 2048, 8, [32] * 10 + [64] * 2, True),
}


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


def expert_capacity(tokens, experts, cf, min_capacity):
    # Note [Capacity is computed in f32] in src/nn/moe_routing.cpp.
    per_expert = torch.tensor(tokens / experts, dtype=torch.float32, device="cpu")
    return max(math.ceil((per_expert * torch.tensor(cf, dtype=torch.float32, device="cpu")).item()), min_capacity)


class MoE(nn.Module):
    def __init__(self, d, experts, residual, tokens, cf=1.0, min_capacity=4):
        super().__init__()
        h = 4 * d
        # Capacity from the token count per call (B * T), fixed: computed here, not traced by torch.compile.
        self.experts, self.tokens = experts, tokens
        self.capacity = expert_capacity(tokens, experts, cf, min_capacity)
        # The expert ids as a buffer: the one-hot compares against loaded ids (F.one_hot's index expression
        # made Inductor's codegen fail, torch 2.11).
        self.register_buffer("expert_ids", torch.arange(experts), persistent=False)
        self.gate = nn.Linear(d, experts, bias=False)
        self.w1 = nn.Parameter(torch.empty(experts, d, h))
        self.b1 = nn.Parameter(torch.zeros(experts, 1, h))
        self.w2 = nn.Parameter(torch.empty(experts, h, d))
        self.b2 = nn.Parameter(torch.zeros(experts, 1, d))
        self.mlp = MLP(d) if residual else None
        self.coefficient = nn.Linear(d, 2) if residual else None

    def forward(self, x):
        """x (B, T, d) -> (out (B, T, d), aux loss)."""
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # (S, d), batch-major
        s, e, c = tokens.shape[0], self.experts, self.capacity
        assert s == self.tokens, f"MoE built for {self.tokens} tokens per call, got {s}"
        with torch.autocast("cuda", enabled=False):
            logits = tokens.float() @ self.gate.weight.float().t()  # (S, E) f32
        probs = logits.softmax(-1)
        expert = logits.argmax(-1)  # (S,) batch-major
        mask = (expert[:, None] == self.expert_ids[None, :]).to(probs.dtype)  # (S, E) one-hot
        aux = e * (probs.mean(0) * mask.mean(0)).sum()
        # Random token selection: each expert keeps its `c` chosen tokens of highest mask x U(0, 1), and the
        # kept tokens take slots in token order. Ours takes the tokens sequence-major (Note [Sequence-major
        # routing]); with i.i.d. draws which tokens are kept is equally random in either order, and the slots'
        # order only arranges the expert buffers, so the reference routes batch-major: the same work less
        # ours's two reorderings (a sequence-major index_select here made Inductor's codegen fail, torch 2.11, as
        # did mask * the scattered ones: the scatter takes the mask's values instead).
        top = (mask * torch.rand_like(mask)).topk(c, dim=0).indices  # (C, E)
        keep = torch.zeros_like(mask).scatter_(0, top, mask.gather(0, top))  # (S, E): chosen and routed
        slot = ((keep.cumsum(0) * keep).sum(1) - 1).long()  # kept: their slot
        kept = keep.sum(1) > 0
        dest = torch.where(kept, expert * c + slot, torch.full_like(slot, e * c))  # e * c: the spare row
        weight = (probs * keep).sum(1, keepdim=True)  # (S, 1): the gate probability, 0 when dropped
        # Dispatch: slot -> token (s = empty, a zero row), then one gather.
        src = torch.full((e * c + 1,), s, dtype=torch.long, device=x.device)
        src = src.scatter(0, dest, torch.arange(s, device=x.device))[: e * c]
        padded = torch.cat([tokens, tokens.new_zeros(1, tokens.shape[1])])
        buffer = padded.index_select(0, src).view(e, c, -1)  # (E, C, d)
        hidden = F.gelu(torch.baddbmm(self.b1, buffer, self.w1), approximate="tanh")
        out = torch.baddbmm(self.b2, hidden, self.w2).view(e * c, -1)  # (E * C, d)
        # Combine: each token's row by index, scaled by its gate weight (dropped: the zero row, weight 0).
        out = torch.cat([out, out.new_zeros(1, out.shape[1])]).index_select(0, dest) * weight
        if self.mlp is not None:
            mix = self.coefficient(tokens).softmax(-1)  # (S, 2)
            out = out * mix[:, 0:1] + self.mlp(tokens) * mix[:, 1:2]
        return out.view(shape), aux


class Block(nn.Module):
    def __init__(self, d, heads, experts, residual, tokens):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.moe = MoE(d, experts, residual, tokens) if experts else None
        self.mlp = None if experts else MLP(d)

    def forward(self, x):
        """x (B, T, d) -> (out, the MoE aux loss or None)."""
        x = x + self.attn(self.ln1(x))
        if self.moe is None:
            return x + self.mlp(self.ln2(x)), None
        y, aux = self.moe(self.ln2(x))
        return x + y, aux


def is_weight(name, p):
    """Matrices and embeddings (normal init, weight decay), not biases or norm parameters."""
    return p.dim() >= 2 and name.rsplit(".", 1)[-1] not in ("b1", "b2")


class GPT(nn.Module):
    def __init__(self, layers, d, heads, seq_len, batch, experts, residual, vocab=50257, aux_coef=0.01):
        super().__init__()
        self.vocab, self.aux_coef = vocab, aux_coef
        padded = (vocab + 63) // 64 * 64
        self.wte = nn.Embedding(padded, d)
        self.wpe = nn.Embedding(seq_len, d)
        per_block = [0] * layers
        if experts:
            moe_blocks = [l for l in range(1, layers + 1) if l % 2 == 0]  # moe.every = 2
            assert len(moe_blocks) == len(experts), f"{len(experts)} expert counts for {len(moe_blocks)} MoE blocks"
            for l, n in zip(moe_blocks, experts):
                per_block[l - 1] = n
        self.blocks = nn.ModuleList(Block(d, heads, n, residual, batch * seq_len) for n in per_block)
        self.ln_f = nn.LayerNorm(d)
        for name, p in self.named_parameters():
            if is_weight(name, p):
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t, device=tokens.device))
        aux = []
        for block in self.blocks:
            x, a = block(x)
            if a is not None:
                aux.append(a)
        loss = self.head_loss(x, targets)
        return loss + self.aux_coef * sum(aux) if aux else loss

    def head_loss(self, x, targets):
        logits = F.linear(self.ln_f(x), self.wte.weight)  # (B, T, V): tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))  # f32 under autocast

    def active_non_embedding(self):
        """Parameters used per token outside the embeddings (ours: count_parameters in src/nn/gpt.cpp)."""
        total = 0
        for name, p in self.named_parameters():
            if name.startswith(("wte.", "wpe.")):
                continue
            n = p.numel()
            if name.rsplit(".", 1)[-1] in ("w1", "b1", "w2", "b2"):
                n //= p.shape[0]  # top-1: one expert of the layer
            total += n
        return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS, default="dense-124m")
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--compile-scope", choices=["blocks", "model"], default="model",
                    help="blocks: each block compiled (identical blocks share one compilation: minutes less) "
                         "and the head + loss; model: the whole model in one graph")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()

    layers, d, heads, seq_len, batch, experts, residual = MODELS[a.model]
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device("cuda")
    with dev:  # parameters made and initialised on the GPU (a 4B-parameter model inits in seconds)
        model = GPT(layers, d, heads, seq_len, batch, experts, residual)
    params = [p for p in model.parameters()]
    decay = [p for n, p in model.named_parameters() if is_weight(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not is_weight(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    forward = model
    if a.mode == "compile":
        if a.compile_scope == "model":
            forward = torch.compile(model)
        else:
            # Static shapes: blocks of other expert counts recompile rather than turning dynamic.
            torch._dynamo.config.automatic_dynamic_shapes = False
            for key in ("recompile_limit", "cache_size_limit"):  # the newer name first
                if hasattr(torch._dynamo.config, key):
                    setattr(torch._dynamo.config, key, 64)
                    break
            for block in model.blocks:
                block.compile()
            model.head_loss = torch.compile(model.head_loss)
    tokens = torch.randint(0, model.vocab, (batch, seq_len + 1), device=dev)
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = forward(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        loss = step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(a.steps):
        loss = step()
    end.record()
    end.synchronize()
    step_ms = start.elapsed_time(end) / a.steps
    tok_s = batch * seq_len / (step_ms * 1e-3)
    padded = model.wte.weight.shape[0]
    flops = 6 * model.active_non_embedding() + 6 * padded * d + 12 * layers * d * seq_len
    mfu = flops * tok_s / PEAK_FLOPS
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    print(f"{a.model} {a.mode}{'' if a.mode == 'eager' else ' (' + a.compile_scope + ')'} on "
          f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {step_ms:.2f} ms/step, {tok_s:.0f} tok/s, "
          f"MFU {100 * mfu:.1f}% ({flops:.3g} FLOP/token), peak memory {peak_gib:.2f} GiB, loss {loss.item():.3f}, "
          f"warm-up {warm_s:.1f} s")
    print(f"torch-ref: step_ms={step_ms:.3f} tokens_per_s={tok_s:.1f} mfu={mfu:.4f} peak_gib={peak_gib:.3f}")


if __name__ == "__main__":
    main()
