"""Golden values for the tiny-GPT test (tests/train/gpt_golden_test.cpp): a PyTorch GPT with
moetrain's architecture and parameter names (2 layers, d 64, 4 heads, T 16, vocab 100 -> 128),
its logits, loss, every parameter gradient, and the losses of 5 AdamW steps.
Run where PyTorch is:  python3 scripts/make_golden_gpt.py tests/data/golden_gpt.h5"""
import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from golden_h5 import write_checkpoint  # noqa: E402

LAYERS, D, HEADS, T, VOCAB, VPAD, B = 2, 64, 4, 16, 100, 128, 2
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.95), 1e-8, 0.1


def params(gen):
    p = {}
    def n(shape, std=0.02):
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * std
    p["wte.weight"] = n((VPAD, D))
    p["wpe.weight"] = n((T, D))
    for i in range(LAYERS):
        b = f"blocks.{i}."
        p[b + "ln1.weight"] = 1 + n((D,), 0.1)
        p[b + "ln1.bias"] = n((D,), 0.1)
        p[b + "attn.qkv.weight"] = n((3 * D, D))
        p[b + "attn.qkv.bias"] = n((3 * D,))
        p[b + "attn.proj.weight"] = n((D, D))
        p[b + "attn.proj.bias"] = n((D,))
        p[b + "ln2.weight"] = 1 + n((D,), 0.1)
        p[b + "ln2.bias"] = n((D,), 0.1)
        p[b + "mlp.fc.weight"] = n((4 * D, D))
        p[b + "mlp.fc.bias"] = n((4 * D,))
        p[b + "mlp.proj.weight"] = n((D, 4 * D))
        p[b + "mlp.proj.bias"] = n((D,))
    p["ln_f.weight"] = 1 + n((D,), 0.1)
    p["ln_f.bias"] = n((D,), 0.1)
    return p


def forward(p, idx):
    x = p["wte.weight"][idx] + p["wpe.weight"][: idx.shape[1]]
    for i in range(LAYERS):
        b = f"blocks.{i}."
        h = F.layer_norm(x, (D,), p[b + "ln1.weight"], p[b + "ln1.bias"], 1e-5)
        qkv = F.linear(h, p[b + "attn.qkv.weight"], p[b + "attn.qkv.bias"])
        q, k, v = qkv.split(D, dim=-1)
        shp = (idx.shape[0], idx.shape[1], HEADS, D // HEADS)
        q, k, v = (t.view(shp).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(idx.shape[0], idx.shape[1], D)
        x = x + F.linear(y, p[b + "attn.proj.weight"], p[b + "attn.proj.bias"])
        h = F.layer_norm(x, (D,), p[b + "ln2.weight"], p[b + "ln2.bias"], 1e-5)
        h = F.gelu(F.linear(h, p[b + "mlp.fc.weight"], p[b + "mlp.fc.bias"]), approximate="tanh")
        x = x + F.linear(h, p[b + "mlp.proj.weight"], p[b + "mlp.proj.bias"])
    x = F.layer_norm(x, (D,), p["ln_f.weight"], p["ln_f.bias"], 1e-5)
    return x @ p["wte.weight"].t()


def main(out):
    gen = torch.Generator().manual_seed(1234)
    p32 = params(gen)
    idx = torch.randint(0, VOCAB, (B, T), generator=gen)
    tgt = torch.randint(0, VOCAB, (B, T), generator=gen)
    tgt[0, 3] = -100  # one ignored target

    # Reference logits, loss and gradients in f64 from the f32 parameters.
    p64 = {k: v.double().requires_grad_(True) for k, v in p32.items()}
    logits = forward(p64, idx)
    loss = F.cross_entropy(logits.view(-1, VPAD), tgt.view(-1), ignore_index=-100)
    loss.backward()

    # Five AdamW steps in f32 (decay on tensors with dim >= 2), the loss before each step.
    pt = {k: v.clone().requires_grad_(True) for k, v in p32.items()}
    decay = [v for v in pt.values() if v.dim() >= 2]
    no_decay = [v for v in pt.values() if v.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        l = F.cross_entropy(forward(pt, idx).view(-1, VPAD), tgt.view(-1), ignore_index=-100)
        losses.append(l.item())
        l.backward()
        opt.step()

    tensors = {f"param.{k}": v.numpy() for k, v in p32.items()}
    tensors["input.tokens"] = idx.to(torch.int64).numpy()
    tensors["input.targets"] = tgt.to(torch.int64).numpy()
    tensors["out.logits"] = logits.detach().numpy()
    tensors["out.loss"] = loss.detach().numpy()
    for k, v in p64.items():
        tensors[f"grad.{k}"] = v.grad.numpy()
    tensors["adamw.losses"] = torch.tensor(losses, dtype=torch.float64).numpy()
    meta = {"layers": LAYERS, "d_model": D, "heads": HEADS, "seq_len": T, "vocab": VOCAB, "lr": LR,
            "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS, "weight_decay": WD, "torch": torch.__version__}
    write_checkpoint(out, tensors, meta)
    print(f"wrote {out}: loss {loss.item():.6f}, adamw losses {[round(x, 6) for x in losses]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_gpt.h5")
