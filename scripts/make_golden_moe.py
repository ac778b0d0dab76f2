#!/usr/bin/env python3
"""Golden values for moetrain's MoE layer, from a PyTorch re-implementation of DeepSpeed's
sharded_moe.py (top1gating / top2gating, no noise, no RTS) and MOELayer (einsum dispatch and
combine over the S x E x C masks), with the expert FFN gelu_tanh(x @ w1 + b1) @ w2 + b2; and
routing cases (ROUTING_CASES) of DeepSpeed's gating with its defaults: RTS, second-expert
sampling and topkgating (k = 3), sequence-major, fed from draws saved in the file.

Writes tests/data/golden_moe.h5 (read by tests/moe/golden_moe_test.cpp), one group per case:
  <case>/config/{experts, top_k, d_model, hidden, capacity_factor, min_capacity, drop_tokens,
                 residual, aux_coef}
  <case>/params/<name>   f32, moetrain's layout and names: gate.weight (E, d), experts.w1 (E, d, h),
                         experts.b1 (E, 1, h), experts.w2 (E, h, d), experts.b2 (E, 1, d); residual
                         also mlp.fc.weight (h, d), mlp.fc.bias (h), mlp.proj.weight (d, h),
                         mlp.proj.bias (d), coefficient.weight (2, d), coefficient.bias (2)
  <case>/x, <case>/dout  f32 (B, T, d): the input and the gradient fed to the output
  <case>/out             (B, T, d); <case>/aux_loss, <case>/z_loss scalars
  <case>/expert, <case>/slot   int64 (S, k): the routing table (slot -1 = dropped); <case>/capacity
  <case>/grads/<name>, <case>/grads/x: gradients of loss = sum(out * dout) + aux_coef * aux_loss
Inputs are rounded to f32 first; everything after is computed in f64, so the reference is exact
to f64 and the C++ f32 layer is compared within 1e-5. Tokens have clear routing margins (checked).
Run: python3 scripts/make_golden_moe.py [--out tests/data/golden_moe.h5]  (needs torch, h5py, numpy)
"""
import argparse
import math

import h5py
import numpy as np
import torch
import torch.nn.functional as F

B, T, D, H, E = 2, 8, 8, 16, 4
MARGIN = 1e-3  # smallest allowed gap between consecutive top logits of a token

CASES = {
    "top1": dict(top_k=1, capacity_factor=1.0, min_capacity=0, drop_tokens=True, residual=False),
    "top1_dropless": dict(top_k=1, capacity_factor=1.0, min_capacity=0, drop_tokens=False, residual=False),
    "top2": dict(top_k=2, capacity_factor=0.75, min_capacity=0, drop_tokens=True, residual=False),
    "residual": dict(top_k=1, capacity_factor=1.0, min_capacity=0, drop_tokens=True, residual=True),
}
AUX_COEF = 0.1


# ---- DeepSpeed's gating (deepspeed/moe/sharded_moe.py), noise and RTS off ----

def _capacity(gates, capacity_factor, min_capacity):
    num_tokens, num_experts = gates.shape
    # torch.tensor(capacity_factor) is f32: the product is rounded to f32 before the ceil.
    capacity = torch.ceil((num_tokens / num_experts) * capacity_factor).to(torch.int64)
    if capacity < min_capacity:
        capacity = min_capacity.to(torch.int64)
    return capacity


def _one_hot_to_float(x, num_classes):
    return F.one_hot(x, num_classes=num_classes).float().to(torch.float64)


def top1gating(logits, capacity_factor, min_capacity, drop_tokens):
    gates = F.softmax(logits, dim=1)
    capacity = _capacity(gates, torch.tensor(capacity_factor), torch.tensor(min_capacity))
    indices1_s = torch.argmax(gates, dim=1)
    num_experts = int(gates.shape[1])
    mask1 = F.one_hot(indices1_s, num_classes=num_experts)
    exp_counts = torch.sum(mask1, dim=0).detach()
    if not drop_tokens:
        capacity = min(torch.max(exp_counts), torch.tensor(mask1.size(0)))
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask1.to(gates.dtype), dim=0)
    l_aux = torch.sum(me * ce) * num_experts
    # Without RTS: keep the earliest tokens (DeepSpeed's topk over mask1 keeps `capacity` of the
    # tokens with mask 1, which for a 0/1 mask are the earliest ones in moetrain's rule).
    locations1 = torch.cumsum(mask1, dim=0) - 1
    mask1 = mask1 * torch.lt(locations1, capacity)
    locations1 = torch.cumsum(mask1, dim=0) - 1
    locations1_s = torch.sum(locations1 * mask1, dim=1)
    gates = gates * mask1.to(gates.dtype)
    locations1_sc = _one_hot_to_float(locations1_s, int(capacity))
    combine_weights = torch.einsum("se,sc->sec", gates, locations1_sc)
    dispatch_mask = combine_weights.bool()
    kept = mask1.sum(dim=1) > 0
    table = (indices1_s[:, None], torch.where(kept, locations1_s, -1)[:, None])
    return l_aux, combine_weights, dispatch_mask, int(capacity), table


def top2gating(logits, capacity_factor, min_capacity, drop_tokens):
    gates = F.softmax(logits, dim=1)
    indices1_s = torch.argmax(gates, dim=1)
    num_experts = int(gates.shape[1])
    mask1 = F.one_hot(indices1_s, num_classes=num_experts)
    # No second-expert sampling: moetrain adds Gumbel noise only under noisy_gate: rsample.
    logits_except1 = logits.detach().masked_fill(mask1.bool(), float("-inf"))
    indices2_s = torch.argmax(logits_except1, dim=1)
    mask2 = F.one_hot(indices2_s, num_classes=num_experts)
    locations1 = torch.cumsum(mask1, dim=0) - 1
    locations2 = torch.cumsum(mask2, dim=0) - 1
    locations2 += torch.sum(mask1, dim=0, keepdim=True)
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask1.to(gates.dtype), dim=0)
    l_aux = torch.mean(me * ce) * num_experts * num_experts
    exp_counts = torch.sum(mask1 + mask2, dim=0)
    if drop_tokens:
        capacity = _capacity(gates, torch.tensor(capacity_factor * 2), torch.tensor(min_capacity))
        mask1 = mask1 * torch.lt(locations1, capacity)
        mask2 = mask2 * torch.lt(locations2, capacity)
    else:
        capacity = torch.max(exp_counts)
    locations1_s = torch.sum(locations1 * mask1, dim=1)
    locations2_s = torch.sum(locations2 * mask2, dim=1)
    mask1_float = mask1.to(gates.dtype)
    mask2_float = mask2.to(gates.dtype)
    gates1_s = torch.einsum("se,se->s", gates, mask1_float)
    gates2_s = torch.einsum("se,se->s", gates, mask2_float)
    denom_s = gates1_s + gates2_s
    denom_s = torch.clamp(denom_s, min=torch.finfo(torch.float32).eps)  # DeepSpeed gates are f32
    gates1_s = gates1_s / denom_s
    gates2_s = gates2_s / denom_s
    gates1 = torch.einsum("s,se->se", gates1_s, mask1_float)
    gates2 = torch.einsum("s,se->se", gates2_s, mask2_float)
    locations1_sc = _one_hot_to_float(locations1_s, int(capacity))
    locations2_sc = _one_hot_to_float(locations2_s, int(capacity))
    combine1_sec = torch.einsum("se,sc->sec", gates1, locations1_sc)
    combine2_sec = torch.einsum("se,sc->sec", gates2, locations2_sc)
    combine_weights = combine1_sec + combine2_sec
    dispatch_mask = combine_weights.bool()
    kept1 = mask1.sum(dim=1) > 0
    kept2 = mask2.sum(dim=1) > 0
    table = (torch.stack([indices1_s, indices2_s], dim=1),
             torch.stack([torch.where(kept1, locations1_s, -1), torch.where(kept2, locations2_s, -1)], dim=1))
    return l_aux, combine_weights, dispatch_mask, int(capacity), table


# ---- DeepSpeed's gating with its defaults, at the router: routing cases ----
# Each routing case stores the gate logits (S, E) of B sequences of T positions (batch-major, as
# moetrain holds them), the draws in DeepSpeed's sequence-major token order (Megatron's [T, B]
# flattening), and the table, weights, losses and d(loss)/d(logits) of
# loss = sum(weight * dweight) + AUX_COEF * l_aux + Z_COEF * z_loss, with the weights (S, k) of the
# table's choices (batch-major).

ROUTING_CASES = {
    # use_rts=True (DeepSpeed's default); min_capacity binds: ceil(16 / 4 * 0.25) = 1 < 2.
    "rts_top1": dict(top_k=1, capacity_factor=0.25, min_capacity=2),
    # an eval capacity factor (2.0, not the training 0.25) with RTS: nothing over capacity is dropped.
    "rts_top1_eval": dict(top_k=1, capacity_factor=2.0, min_capacity=1),
    # top2_2nd_expert_sampling=True: the second choice is argmax(logits + Gumbel) without the first.
    "sampled_top2": dict(top_k=2, capacity_factor=0.5, min_capacity=3),
    # topkgating, drop_policy "probs": ceil(16 / 4 * 0.25 * 3) = 3.
    "topk3": dict(top_k=3, capacity_factor=0.25, min_capacity=2),
}
Z_COEF = 0.05


def ds_gating(logits, k, capacity_factor, min_capacity, gumbel, uniform):
    """DeepSpeed's top1gating (use_rts), top2gating (top2_2nd_expert_sampling) or topkgating
    (drop_policy probs), drop_tokens=True, over sequence-major logits (S, E). Returns the
    choices (S, k), slots (S, k) (-1 dropped), weights (S, k), l_aux and capacity."""
    gates = F.softmax(logits, dim=1)
    S, E = gates.shape
    if k == 1:
        capacity = _capacity(gates, torch.tensor(capacity_factor), torch.tensor(min_capacity))
        indices1_s = torch.argmax(gates, dim=1)
        mask1 = F.one_hot(indices1_s, num_classes=E)
        me = torch.mean(gates, dim=0)
        ce = torch.mean(mask1.to(gates.dtype), dim=0)
        l_aux = torch.sum(me * ce) * E
        mask1_rand = mask1 * uniform  # use_rts: priority mask x U(0, 1)
        top_idx = torch.topk(mask1_rand, k=int(capacity), dim=0)[1]
        mask1 = mask1 * torch.zeros_like(mask1).scatter_(0, top_idx, 1)
        locations1 = torch.cumsum(mask1, dim=0) - 1
        locations1_s = torch.sum(locations1 * mask1, dim=1)
        kept = mask1.sum(dim=1) > 0
        weight = torch.einsum("se,se->s", gates, mask1.to(gates.dtype))
        return indices1_s[:, None], torch.where(kept, locations1_s, -1)[:, None], weight[:, None], l_aux, int(capacity)
    if k == 2:
        capacity = _capacity(gates, torch.tensor(capacity_factor * 2), torch.tensor(min_capacity))
        indices1_s = torch.argmax(gates, dim=1)
        mask1 = F.one_hot(indices1_s, num_classes=E)
        logits_w_noise = logits + gumbel  # top2_2nd_expert_sampling
        logits_except1 = logits_w_noise.masked_fill(mask1.bool(), float("-inf"))
        indices2_s = torch.argmax(logits_except1, dim=1)
        mask2 = F.one_hot(indices2_s, num_classes=E)
        locations1 = torch.cumsum(mask1, dim=0) - 1
        locations2 = torch.cumsum(mask2, dim=0) - 1
        locations2 += torch.sum(mask1, dim=0, keepdim=True)
        me = torch.mean(gates, dim=0)
        ce = torch.mean(mask1.to(gates.dtype), dim=0)
        l_aux = torch.mean(me * ce) * E * E
        mask1 = mask1 * torch.lt(locations1, capacity)
        mask2 = mask2 * torch.lt(locations2, capacity)
        locations1_s = torch.sum(locations1 * mask1, dim=1)
        locations2_s = torch.sum(locations2 * mask2, dim=1)
        gates1_s = torch.einsum("se,se->s", gates, mask1.to(gates.dtype))
        gates2_s = torch.einsum("se,se->s", gates, mask2.to(gates.dtype))
        denom_s = torch.clamp(gates1_s + gates2_s, min=torch.finfo(torch.float32).eps)
        expert = torch.stack([indices1_s, indices2_s], dim=1)
        slot = torch.stack([torch.where(mask1.sum(1) > 0, locations1_s, -1),
                            torch.where(mask2.sum(1) > 0, locations2_s, -1)], dim=1)
        return expert, slot, torch.stack([gates1_s / denom_s, gates2_s / denom_s], dim=1), l_aux, int(capacity)
    capacity = _capacity(gates, torch.tensor(capacity_factor * k), torch.tensor(min_capacity))
    top_gate, top_idx = torch.topk(gates, k=k, dim=1)
    topk_masked_gates = torch.zeros_like(logits).scatter(1, top_idx, top_gate)
    mask = torch.zeros_like(gates, dtype=torch.bool).scatter_(1, top_idx, 1)
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask.to(gates.dtype), dim=0)
    l_aux = torch.mean(me * ce) * E * E / k
    capacity_indices = torch.topk(topk_masked_gates.detach(), k=int(capacity), dim=0, sorted=False)[1]
    capacity_mask = torch.zeros_like(logits).scatter(0, capacity_indices, 1)
    mask = torch.logical_and(mask, capacity_mask)
    locations = torch.cumsum(mask, dim=0) - 1
    gates_masked = gates * mask
    denom_s = torch.clamp(torch.sum(gates_masked, dim=-1, keepdim=True), min=torch.finfo(torch.float32).eps)
    gates_masked = gates_masked / denom_s
    kept = torch.gather(mask, 1, top_idx)
    slot = torch.where(kept, torch.gather(locations, 1, top_idx), -1)
    return top_idx, slot, torch.gather(gates_masked, 1, top_idx), l_aux, int(capacity)


def seq_major(a):
    """(B * T, n) batch-major rows -> (T * B, n) sequence-major."""
    return a.reshape(B, T, -1).transpose(0, 1).reshape(B * T, -1)


def batch_major(a):
    return a.reshape(T, B, -1).transpose(0, 1).reshape(B * T, -1)


def write_routing_case(f, name, cfg, seed):
    rng = np.random.default_rng(seed)
    k = cfg["top_k"]
    while True:  # clear margins between the top choices of each token
        logits = rng.normal(0, 1.0, (B * T, E)).astype(np.float32)
        top = -np.sort(-logits.astype(np.float64), axis=1)[:, : k + 1]
        if float(np.min(top[:, :-1] - top[:, 1:])) > MARGIN:
            break
    # The draws are in sequence-major order, as the router consumes them; everything stored is f32.
    gumbel = (-np.log(-np.log(rng.uniform(1e-20, 1.0, (B * T, E))))).astype(np.float32)
    uniform = rng.uniform(0, 1, (B * T, E)).astype(np.float32)
    dweight = rng.uniform(-1, 1, (B * T, k)).astype(np.float32)
    tl = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    draws = [torch.tensor(a, dtype=torch.float64) for a in (gumbel, uniform)]
    expert, slot, weight, l_aux, capacity = ds_gating(seq_major(tl), k, cfg["capacity_factor"], cfg["min_capacity"], *draws)
    expert, slot, weight = batch_major(expert), batch_major(slot), batch_major(weight)
    z_loss = torch.mean(torch.logsumexp(tl, dim=1) ** 2)
    loss = torch.sum(weight * torch.tensor(dweight, dtype=torch.float64)) + AUX_COEF * l_aux + Z_COEF * z_loss
    loss.backward()

    g = f.create_group(name)
    c = g.create_group("config")
    c["top_k"], c["capacity_factor"], c["min_capacity"] = k, cfg["capacity_factor"], cfg["min_capacity"]
    c["sequence_length"], c["aux_coef"], c["z_coef"] = T, AUX_COEF, Z_COEF
    g["logits"], g["gumbel"], g["uniform"], g["dweight"] = logits, gumbel, uniform, dweight
    g["expert"], g["slot"] = expert.numpy().astype(np.int64), slot.numpy().astype(np.int64)
    g["weight"] = weight.detach().numpy()
    g["aux_loss"], g["z_loss"], g["capacity"] = float(l_aux), float(z_loss), capacity
    g["grads/logits"] = tl.grad.numpy()
    print(f"{name}: capacity {capacity}, dropped {int((slot < 0).sum())} of {slot.numel()} choices")


# ---- the layer ----

def make_case(rng, cfg):
    p = {
        "gate.weight": rng.normal(0, 1.0, (E, D)),
        "experts.w1": rng.normal(0, 0.3, (E, D, H)),
        "experts.b1": rng.normal(0, 0.1, (E, 1, H)),
        "experts.w2": rng.normal(0, 0.3, (E, H, D)),
        "experts.b2": rng.normal(0, 0.1, (E, 1, D)),
    }
    if cfg["residual"]:
        p["mlp.fc.weight"] = rng.normal(0, 0.3, (H, D))
        p["mlp.fc.bias"] = rng.normal(0, 0.1, (H,))
        p["mlp.proj.weight"] = rng.normal(0, 0.3, (D, H))
        p["mlp.proj.bias"] = rng.normal(0, 0.1, (D,))
        p["coefficient.weight"] = rng.normal(0, 0.5, (2, D))
        p["coefficient.bias"] = rng.normal(0, 0.1, (2,))
    p = {k: v.astype(np.float32) for k, v in p.items()}
    x = rng.uniform(-1, 1, (B, T, D)).astype(np.float32)
    dout = rng.uniform(-1, 1, (B, T, D)).astype(np.float32)
    return p, x, dout


def margin_ok(x, gate_w, k):
    logits = x.reshape(-1, D).astype(np.float64) @ gate_w.astype(np.float64).T
    top = -np.sort(-logits, axis=1)[:, : k + 1]
    return float(np.min(top[:, :-1] - top[:, 1:])) > MARGIN


def forward(cfg, params, x):
    tokens = x.reshape(-1, D)
    logits = tokens @ params["gate.weight"].T  # the gate, f64 here (f32 in both implementations' spirit)
    gating = top1gating if cfg["top_k"] == 1 else top2gating
    l_aux, combine_weights, dispatch_mask, capacity, table = gating(
        logits, cfg["capacity_factor"], cfg["min_capacity"], cfg["drop_tokens"])
    z_loss = torch.mean(torch.logsumexp(logits, dim=1) ** 2)
    dispatched = torch.einsum("sec,sm->ecm", dispatch_mask.to(tokens.dtype), tokens)  # (E, C, d)
    hidden = F.gelu(torch.bmm(dispatched, params["experts.w1"]) + params["experts.b1"], approximate="tanh")
    expert_out = torch.bmm(hidden, params["experts.w2"]) + params["experts.b2"]
    out = torch.einsum("sec,ecm->sm", combine_weights.to(tokens.dtype), expert_out)
    if cfg["residual"]:
        mlp = F.linear(F.gelu(F.linear(tokens, params["mlp.fc.weight"], params["mlp.fc.bias"]), approximate="tanh"),
                       params["mlp.proj.weight"], params["mlp.proj.bias"])
        coef = F.softmax(F.linear(tokens, params["coefficient.weight"], params["coefficient.bias"]), dim=-1)
        out = out * coef[..., 0:1] + mlp * coef[..., 1:]
    return out.reshape(x.shape), l_aux, z_loss, capacity, table


def write_case(f, name, cfg, seed):
    rng = np.random.default_rng(seed)
    while True:  # draw until the routing has clear margins and, when dropping, drops something
        params, x, dout = make_case(rng, cfg)
        if not margin_ok(x, params["gate.weight"], cfg["top_k"]):
            continue
        tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out, l_aux, z_loss, capacity, (expert, slot) = forward(cfg, tp, tx)
        dropped = int((slot < 0).sum())
        if (dropped > 0) == cfg["drop_tokens"]:
            break
    loss = torch.sum(out * torch.tensor(dout, dtype=torch.float64)) + AUX_COEF * l_aux
    loss.backward()

    g = f.create_group(name)
    c = g.create_group("config")
    c["experts"], c["top_k"], c["d_model"], c["hidden"] = E, cfg["top_k"], D, H
    c["capacity_factor"], c["min_capacity"] = cfg["capacity_factor"], cfg["min_capacity"]
    c["drop_tokens"], c["residual"], c["aux_coef"] = int(cfg["drop_tokens"]), int(cfg["residual"]), AUX_COEF
    for k, v in params.items():
        g[f"params/{k}"] = v
    g["x"], g["dout"] = x, dout
    g["out"] = out.detach().numpy()
    g["aux_loss"], g["z_loss"] = float(l_aux), float(z_loss)
    g["capacity"] = capacity
    g["expert"], g["slot"] = expert.numpy().astype(np.int64), slot.numpy().astype(np.int64)
    for k, v in tp.items():
        g[f"grads/{k}"] = v.grad.numpy()
    g["grads/x"] = tx.grad.numpy()
    print(f"{name}: capacity {capacity}, dropped {dropped} of {slot.numel()} choices, aux {float(l_aux):.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/golden_moe.h5")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    with h5py.File(args.out, "w") as f:
        f.attrs["generator"] = f"scripts/make_golden_moe.py, torch {torch.__version__}"
        for i, (name, cfg) in enumerate(CASES.items()):
            write_case(f, name, cfg, seed=1000 + i)
        for i, (name, cfg) in enumerate(ROUTING_CASES.items()):
            write_routing_case(f, name, cfg, seed=2000 + i)


if __name__ == "__main__":
    main()
