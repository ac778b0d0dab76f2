#!/usr/bin/env python3
"""Golden values for moetrain's optimizers, gradient clipping and LR schedules, from PyTorch.

Writes tests/data/golden_optim.h5 (read by tests/optim/golden_optim_test.cpp):
  params/init/p{0,1,2}          f32 starting values (p1 is in the no-decay group)
  grads/step{1..5}/p{0,1,2}     f32 gradients fed at each step
  adamw/{lr (per step), beta1, beta2, eps, weight_decay}
  adamw/step{1..5}/p{i}         parameters after each AdamW step
  adamw/final/p{i}/{exp_avg, exp_avg_sq}
  sgd/{lr, momentum, weight_decay}, sgd/step{1..5}/p{i}, sgd/final/p{i}/momentum_buffer
  clip/{max_norm, total_norm}, clip/grad_in/g{0,1}, clip/grad_out/g{0,1}  (clipped case)
  clip_noop/...                                                            (norm below max)
  schedule/{cosine,linear}/{lr, warmup_steps, total_steps, min_lr_ratio, steps, lrs}
Run: python3 scripts/make_golden_optim.py [--out tests/data/golden_optim.h5]  (needs torch, h5py, numpy)
"""
import argparse
import math

import h5py
import numpy as np
import torch

SHAPES = [(3, 4), (5,), (2, 3)]
DECAY = [True, False, True]
STEPS = 5
GRAD_SCALE = [0.1, 1.0, 2.0]


def init_params():
    out = []
    for k, shape in enumerate(SHAPES):
        n = int(np.prod(shape))
        v = (np.arange(n, dtype=np.float64) * 0.37 + 0.11 * k) % 1.9 - 0.95
        out.append(v.reshape(shape).astype(np.float32))
    return out


def grads_at(step):
    out = []
    for k, shape in enumerate(SHAPES):
        n = int(np.prod(shape))
        i = np.arange(n, dtype=np.float64)
        g = np.sin(0.7 * i + 1.3 * step + k) * (0.5 + 0.25 * step) * GRAD_SCALE[k]
        g[0] = 0.0 if step == 2 else g[0]  # a zero gradient element on one step
        out.append(g.reshape(shape).astype(np.float32))
    return out


def make_params():
    return [torch.tensor(v, dtype=torch.float32, requires_grad=True) for v in init_params()]


def groups(params, wd):
    return [{"params": [p for p, d in zip(params, DECAY) if d], "weight_decay": wd},
            {"params": [p for p, d in zip(params, DECAY) if not d], "weight_decay": 0.0}]


def run_optimizer(f, name, opt, params, lrs, slots):
    for s in range(1, STEPS + 1):
        for g in opt.param_groups:
            g["lr"] = lrs[s - 1]
        for p, g in zip(params, grads_at(s)):
            p.grad = torch.tensor(g)
        opt.step()
        for k, p in enumerate(params):
            f[f"{name}/step{s}/p{k}"] = p.detach().numpy()
    for k, p in enumerate(params):
        for slot in slots:
            f[f"{name}/final/p{k}/{slot}"] = opt.state[p][slot].numpy()


def write_clip(f, name, grads, max_norm):
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)
    f[f"{name}/max_norm"] = max_norm
    f[f"{name}/total_norm"] = float(total)
    for k, (p, g) in enumerate(zip(params, grads)):
        f[f"{name}/grad_in/g{k}"] = g
        f[f"{name}/grad_out/g{k}"] = p.grad.numpy()


def lr_lambda(decay, warmup, total, min_ratio):
    # moetrain's definition (src/optim/lr_schedule.cpp), as a LambdaLR factor.
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        if step >= total:
            return min_ratio
        progress = (step - warmup) / (total - warmup)
        factor = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
        return min_ratio + factor * (1 - min_ratio)
    return f


def write_schedule(f, decay, lr, warmup, total, min_ratio, steps):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(decay, warmup, total, min_ratio))
    lrs = {}
    for s in range(max(steps) + 1):
        lrs[s] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    g = f"schedule/{decay}"
    f[f"{g}/lr"] = lr
    f[f"{g}/warmup_steps"] = warmup
    f[f"{g}/total_steps"] = total
    f[f"{g}/min_lr_ratio"] = min_ratio
    f[f"{g}/steps"] = np.array(steps, dtype=np.int64)
    f[f"{g}/lrs"] = np.array([lrs[s] for s in steps], dtype=np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/data/golden_optim.h5")
    args = ap.parse_args()
    torch.manual_seed(0)
    with h5py.File(args.out, "w") as f:
        f.attrs["torch_version"] = str(torch.__version__)
        for k, v in enumerate(init_params()):
            f[f"params/init/p{k}"] = v
        for s in range(1, STEPS + 1):
            for k, g in enumerate(grads_at(s)):
                f[f"grads/step{s}/p{k}"] = g

        lrs = [1e-2, 1e-2, 5e-3, 5e-3, 2e-3]
        beta1, beta2, eps, wd = 0.9, 0.95, 1e-8, 0.1
        params = make_params()
        opt = torch.optim.AdamW(groups(params, wd), lr=lrs[0], betas=(beta1, beta2), eps=eps, foreach=False)
        f["adamw/lr"] = np.array(lrs, dtype=np.float64)
        f["adamw/beta1"], f["adamw/beta2"], f["adamw/eps"], f["adamw/weight_decay"] = beta1, beta2, eps, wd
        run_optimizer(f, "adamw", opt, params, lrs, ["exp_avg", "exp_avg_sq"])

        sgd_lr, momentum, sgd_wd = 0.05, 0.9, 0.01
        params = make_params()
        opt = torch.optim.SGD(groups(params, sgd_wd), lr=sgd_lr, momentum=momentum, foreach=False)
        f["sgd/lr"], f["sgd/momentum"], f["sgd/weight_decay"] = sgd_lr, momentum, sgd_wd
        run_optimizer(f, "sgd", opt, params, [sgd_lr] * STEPS, ["momentum_buffer"])

        g0 = grads_at(1)
        write_clip(f, "clip", [g0[0], g0[2]], 1.0)
        write_clip(f, "clip_noop", [g0[0] * 0.01, g0[1] * 0.01], 5.0)

        write_schedule(f, "cosine", 6e-4, 10, 100, 0.1, [0, 1, 5, 9, 10, 11, 30, 55, 99, 100, 150])
        write_schedule(f, "linear", 3e-4, 5, 50, 0.0, [0, 4, 5, 6, 20, 49, 50, 80])
    print("wrote", args.out)


if __name__ == "__main__":
    main()
