#!/usr/bin/env python3
"""PyTorch eager baseline for `mllm bench runtime` (issue: runtime performance).

Runs the same figures as our CPU reference benchmark, in PyTorch eager mode on the same machine:
the [128x2048]x[2048x2048] f32 GEMM, then a plain Qwen3 forward (written here from the model's
published architecture, no `transformers` needed) on a bf16 checkpoint with f32 weights:
prefill of a 128-token prompt and greedy decode steps with a KV cache.

Usage (PyTorch is not a project dependency; install it in a throwaway venv):
    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch safetensors numpy
    /tmp/torchenv/bin/python scripts/bench-pytorch.py target/bench-models/qwen3_0_6b [--threads 2]
The checkpoint directory is the one `mllm bench runtime` generates (or any Qwen3 checkpoint).
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from safetensors import safe_open


def gemm_figures(threads: int) -> None:
    a = torch.randn(128, 2048)
    b = torch.randn(2048, 2048)
    flop = 2 * 128 * 2048 * 2048
    times = []
    for _ in range(15):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    best, med = min(times), statistics.median(times)
    print(
        f"  GEMM [128x2048] x [2048x2048] f32, {threads} threads: best {flop / best / 1e9:.1f} "
        f"GFLOP/s, median {flop / med / 1e9:.1f} over 15 runs"
    )


class Qwen3:
    """A minimal eager Qwen3 decoder (f32), weights loaded from safetensors."""

    def __init__(self, ckpt: Path):
        cfg = json.loads((ckpt / "config.json").read_text())
        self.cfg = cfg
        self.h = cfg["hidden_size"]
        self.nq = cfg["num_attention_heads"]
        self.nkv = cfg["num_key_value_heads"]
        self.d = cfg.get("head_dim") or self.h // self.nq
        self.eps = cfg["rms_norm_eps"]
        self.layers = cfg["num_hidden_layers"]
        w = {}
        with safe_open(str(ckpt / "model.safetensors"), framework="pt") as f:
            for k in f.keys():
                w[k] = f.get_tensor(k).to(torch.float32)
        self.w = w
        self.lm_head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        theta = cfg.get("rope_theta", 1e6)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.d, 2, dtype=torch.float32) / self.d))

    def rms(self, x, w):
        v = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(v + self.eps) * w

    def rope(self, x, pos):
        f = torch.outer(pos.float(), self.inv_freq)
        emb = torch.cat([f, f], -1)
        cos, sin = emb.cos(), emb.sin()
        x1, x2 = x[..., : self.d // 2], x[..., self.d // 2 :]
        rot = torch.cat([-x2, x1], -1)
        return x * cos + rot * sin

    def forward(self, ids, cache, start):
        s = ids.shape[0]
        pos = torch.arange(start, start + s)
        x = self.w["model.embed_tokens.weight"][ids]
        g = self.nq // self.nkv
        for li in range(self.layers):
            p = f"model.layers.{li}."
            hs = self.rms(x, self.w[p + "input_layernorm.weight"])
            q = (hs @ self.w[p + "self_attn.q_proj.weight"].T).view(s, self.nq, self.d)
            k = (hs @ self.w[p + "self_attn.k_proj.weight"].T).view(s, self.nkv, self.d)
            v = (hs @ self.w[p + "self_attn.v_proj.weight"].T).view(s, self.nkv, self.d)
            q = self.rope(self.rms(q, self.w[p + "self_attn.q_norm.weight"]).transpose(0, 1), pos)
            k = self.rope(self.rms(k, self.w[p + "self_attn.k_norm.weight"]).transpose(0, 1), pos)
            v = v.transpose(0, 1)
            if cache[li] is not None:
                k = torch.cat([cache[li][0], k], 1)
                v = torch.cat([cache[li][1], v], 1)
            cache[li] = (k, v)
            kk = k.repeat_interleave(g, 0)
            vv = v.repeat_interleave(g, 0)
            att = (q @ kk.transpose(1, 2)) / (self.d**0.5)
            if s > 1:
                n = kk.shape[1]
                mask = torch.ones(s, n, dtype=torch.bool).tril(n - s)
                att = att.masked_fill(~mask, float("-inf"))
            o = (att.softmax(-1) @ vv).transpose(0, 1).reshape(s, self.nq * self.d)
            x = x + o @ self.w[p + "self_attn.o_proj.weight"].T
            hs = self.rms(x, self.w[p + "post_attention_layernorm.weight"])
            gate = hs @ self.w[p + "mlp.gate_proj.weight"].T
            up = hs @ self.w[p + "mlp.up_proj.weight"].T
            x = x + (torch.nn.functional.silu(gate) * up) @ self.w[p + "mlp.down_proj.weight"].T
        x = self.rms(x, self.w["model.norm.weight"])
        return x @ self.lm_head.T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"== PyTorch {torch.__version__} eager, {args.threads} threads")
    with torch.inference_mode():
        gemm_figures(args.threads)
        t = time.perf_counter()
        m = Qwen3(args.checkpoint)
        print(f"  model loaded (f32) in {time.perf_counter() - t:.1f} s")
        ids = torch.randint(0, m.cfg["vocab_size"], (args.prompt_len,))
        best = None
        for _ in range(2):
            cache = [None] * m.layers
            t = time.perf_counter()
            logits = m.forward(ids, cache, 0)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        print(f"  prefill {args.prompt_len} tokens: {best:.2f} s, {args.prompt_len / best:.1f} tok/s (best of 2)")
        tok = logits[-1].argmax().reshape(1)
        t = time.perf_counter()
        for i in range(args.decode_tokens):
            logits = m.forward(tok, cache, args.prompt_len + i)
            tok = logits[-1].argmax().reshape(1)
        dt = time.perf_counter() - t
        print(f"  decode {args.decode_tokens} tokens: {args.decode_tokens / dt:.2f} tok/s, {dt / args.decode_tokens * 1e3:.1f} ms/token")


if __name__ == "__main__":
    main()
