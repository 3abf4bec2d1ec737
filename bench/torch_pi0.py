#!/usr/bin/env python3
"""PyTorch eager implementation of pi0 / pi0.5 inference, the peer pi0.cpp is measured against.

The same architecture as openpi's PyTorch model (docs/model.md §2-§3): SigLIP + projector, Gemma
mixture-of-transformers with one joint attention, prefix KV cache, Euler denoising. Weights are
read from the same model.safetensors (memory-mapped) and run in bf16 (or f32), as users run
openpi's PyTorch port today. Needs Debian's python3-torch (`apt-get install python3-torch`).

  /usr/bin/python3 bench/torch_pi0.py --checkpoint DIR [--threads 2] [--cameras 3] [--tokens N] [--runs 3] [--dtype bf16]
  /usr/bin/python3 bench/torch_pi0.py --checkpoint DIR --case case.safetensors --dtype f32   # check vs golden
"""
import argparse, json, math, mmap, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

NP = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BF16": np.int16}


def read_safetensors(path):
    f = open(path, "rb")
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = struct.unpack("<Q", m[:8])[0]
    header = json.loads(m[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(m, dtype=NP[e["dtype"]], count=(end - b) // np.dtype(NP[e["dtype"]]).itemsize, offset=8 + n + b)
        t = torch.from_numpy(arr.copy())
        if e["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(e["shape"])
    return out, meta


class Pi0:
    def __init__(self, ckpt_dir, dtype):
        cfg = json.load(open(f"{ckpt_dir}/config.json"))["architecture"]
        self.c = cfg
        w, _ = read_safetensors(f"{ckpt_dir}/model.safetensors")
        # As openpi's PyTorch port in bf16 (docs/model.md §8.2): the patch/position embeddings, every Gemma
        # norm (and adaRMS dense) and all action/time/state heads stay f32.
        keep = ("patch_embedding", "position_embedding", "layernorm", "norm.", "action_", "state_proj", "time_mlp")
        self.w = {k: v.to(torch.float32 if any(s in k for s in keep) and "vision_model.encoder" not in k
                          and "post_layernorm" not in k else dtype) for k, v in w.items()}
        self.dtype = dtype

    def W(self, name):
        return self.w[name]

    def linear(self, x, name, bias=True):
        b = self.w.get(name + ".bias") if bias else None
        w = self.w[name + ".weight"]
        return F.linear(x.to(w.dtype), w, b)

    # SigLIP + projector: images [B,3,H,W] -> [B,Np,D]
    def vision(self, img):
        v, V = self.c["vision"], "paligemma_with_expert.paligemma.model.vision_tower.vision_model."
        pw = self.W(V + "embeddings.patch_embedding.weight")
        x = F.conv2d(img.to(pw.dtype), pw, self.W(V + "embeddings.patch_embedding.bias"), stride=v["patch_size"])
        x = (x.flatten(2).transpose(1, 2) + self.W(V + "embeddings.position_embedding.weight")).to(self.dtype)
        B, N, D = x.shape
        H = v["num_heads"]
        hd = D // H
        for i in range(v["depth"]):
            L = V + f"encoder.layers.{i}."
            y = F.layer_norm(x, (D,), self.W(L + "layer_norm1.weight"), self.W(L + "layer_norm1.bias"), v["layer_norm_eps"])
            q, k, vv = (self.linear(y, L + f"self_attn.{p}_proj").view(B, N, H, hd).transpose(1, 2) for p in "qkv")
            a = torch.softmax((q @ k.transpose(-1, -2)).float() * hd ** -0.5, -1).to(self.dtype) @ vv
            x = x + self.linear(a.transpose(1, 2).reshape(B, N, D), L + "self_attn.out_proj")
            y = F.layer_norm(x, (D,), self.W(L + "layer_norm2.weight"), self.W(L + "layer_norm2.bias"), v["layer_norm_eps"])
            x = x + self.linear(F.gelu(self.linear(y, L + "mlp.fc1"), approximate="tanh"), L + "mlp.fc2")
        x = F.layer_norm(x, (D,), self.W(V + "post_layernorm.weight"), self.W(V + "post_layernorm.bias"), v["layer_norm_eps"])
        return self.linear(x, "paligemma_with_expert.paligemma.model.multi_modal_projector.linear")

    @staticmethod
    def rms(x, w=None, mod=None, eps=1e-6):
        n = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)
        if mod is None:
            return (n * (1 + w.float())).to(x.dtype), None
        scale, shift, gate = mod.float().unsqueeze(1).chunk(3, -1)
        return (n * (1 + scale) + shift).to(x.dtype), gate.to(x.dtype)

    @staticmethod
    def rope(x, pos, theta):
        hd = x.shape[-1]
        inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
        ang = (pos.double()[..., None] * inv).float()
        c, s = ang.cos()[:, :, None].to(x.dtype), ang.sin()[:, :, None].to(x.dtype)  # x: [B, T, heads, hd]
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    # One mixture-of-transformers pass. streams: list of (prefix_str, x [B,T,D], cond or None).
    # kv_in: per-layer (k, v) to prepend (cache) or None; returns outputs and per-layer (k, v).
    def layers(self, streams, pos, mask, kv_in=None, skip_last=False):
        g = self.c["vlm"]
        N, K, hd = g["num_heads"], g["num_kv_heads"], g["head_dim"]
        xs = [x for _, x, _ in streams]
        kv_out = []
        for i in range(g["depth"]):
            qs, ks, vs, gates = [], [], [], []
            for (P, _, cond), x in zip(streams, xs):
                L = P + f"layers.{i}."
                mod = self.linear(cond, L + "input_layernorm.dense") if cond is not None else None
                y, gate = self.rms(x, self.w.get(L + "input_layernorm.weight"), mod)
                gates.append(gate)
                B, T, _ = y.shape
                qs.append(self.linear(y, L + "self_attn.q_proj", False).view(B, T, N, hd))
                ks.append(self.linear(y, L + "self_attn.k_proj", False).view(B, T, K, hd))
                vs.append(self.linear(y, L + "self_attn.v_proj", False).view(B, T, K, hd))
            q, k, v = torch.cat(qs, 1), torch.cat(ks, 1), torch.cat(vs, 1)
            q = self.rope(q, pos, g["rope_theta"]).transpose(1, 2)
            k = self.rope(k, pos, g["rope_theta"]).transpose(1, 2)
            v = v.transpose(1, 2)
            kv_out.append((k, v))
            if kv_in is not None:
                k, v = torch.cat([kv_in[i][0], k], 2), torch.cat([kv_in[i][1], v], 2)
            if skip_last and i == g["depth"] - 1:
                break
            G = N // K
            qg = q.reshape(q.shape[0], K, G * q.shape[2], hd)
            logits = (qg @ k.transpose(-1, -2)).float().view(q.shape[0], N, q.shape[2], -1) * hd ** -0.5
            p = torch.softmax(logits + mask[:, None], -1).to(self.dtype).reshape(q.shape[0], K, -1, k.shape[2])
            o = (p @ v).reshape(q.shape[0], N, q.shape[2], hd).transpose(1, 2).reshape(q.shape[0], q.shape[2], N * hd)
            start = 0
            for j, ((P, _, cond), x) in enumerate(zip(streams, xs)):
                L = P + f"layers.{i}."
                T = x.shape[1]
                out = self.linear(o[:, start:start + T], L + "self_attn.o_proj", False)
                start += T
                x = x + (out if gates[j] is None else out * gates[j])
                mod = self.linear(cond, L + "post_attention_layernorm.dense") if cond is not None else None
                y, gate = self.rms(x, self.w.get(L + "post_attention_layernorm.weight"), mod)
                h = F.gelu(self.linear(y, L + "mlp.gate_proj", False), approximate="tanh") * self.linear(y, L + "mlp.up_proj", False)
                out = self.linear(h, L + "mlp.down_proj", False)
                xs[j] = x + (out if gate is None else out * gate)
        return xs, kv_out

    def final_norm(self, P, x, cond):
        mod = self.linear(cond, P + "norm.dense") if cond is not None else None
        return self.rms(x, self.w.get(P + "norm.weight"), mod)[0]

    def time_emb(self, t):
        d = self.c["time_embedding"]
        half = d["dim"] // 2
        frac = torch.linspace(0.0, 1.0, half, dtype=torch.float64)
        period = d["min_period"] * (d["max_period"] / d["min_period"]) ** frac
        x = (1.0 / period * 2 * math.pi)[None] * t.double()[:, None]
        return torch.cat([x.sin(), x.cos()], -1).float()

    @staticmethod
    def attn_mask(valid, ar):
        c = torch.cumsum(ar, 1)
        ok = (c[:, None, :] <= c[:, :, None]) & valid[:, None, :] & valid[:, :, None]
        return torch.where(ok, 0.0, -2.3819763e38)

    def sample(self, images, masks, tokens, tmask, state, noise, steps, timings=None):
        c = self.c
        t0 = time.perf_counter()
        embs, valid = [], []
        for img, m in zip(images, masks):
            e = self.vision(img)
            embs.append(e)
            valid.append(m[:, None].expand(-1, e.shape[1]))
        D = c["vlm"]["width"]
        emb = F.embedding(tokens.long(), self.W("paligemma_with_expert.paligemma.lm_head.weight")) * math.sqrt(D)
        x = torch.cat(embs + [emb.to(self.dtype)], 1)
        pv = torch.cat(valid + [tmask], 1)
        t1 = time.perf_counter()
        B, P = pv.shape
        mask = self.attn_mask(pv, torch.zeros_like(pv, dtype=torch.long))
        pos = torch.cumsum(pv.long(), 1) - 1
        LM, EX = "paligemma_with_expert.paligemma.model.language_model.", "paligemma_with_expert.gemma_expert.model."
        _, cache = self.layers([(LM, x, None)], pos, mask, skip_last=True)
        t2 = time.perf_counter()
        H, pi05 = c["action_horizon"], c["pi05"]
        S = H + (0 if pi05 else 1)
        ar = torch.tensor([1] + ([1] if not pi05 else []) + [0] * (H - 1))[None].expand(B, -1)
        smask = self.attn_mask(torch.ones(B, S, dtype=torch.bool), ar)
        fmask = torch.cat([torch.where(pv, 0.0, -2.3819763e38)[:, None].expand(-1, S, -1), smask], 2)
        spos = pv.sum(1, keepdim=True) + torch.arange(S)[None]
        xt, dt, t = noise.clone(), torch.tensor(-1.0 / steps), torch.tensor(1.0)
        step_ms = []
        while t >= -dt / 2:
            s0 = time.perf_counter()
            temb = self.time_emb(t.expand(B))
            a = self.linear(xt, "action_in_proj")
            if pi05:
                cond = F.silu(self.linear(F.silu(self.linear(temb, "time_mlp_in")), "time_mlp_out")).to(self.dtype)
                suffix = a
            else:
                cond = None
                h = torch.cat([a, temb[:, None].expand(-1, H, -1)], -1)
                h = self.linear(F.silu(self.linear(h, "action_time_mlp_in")), "action_time_mlp_out")
                suffix = torch.cat([self.linear(state, "state_proj")[:, None], h], 1)
            (out,), _ = self.layers([(EX, suffix.to(self.dtype), cond)], spos, fmask, kv_in=cache)
            out = self.final_norm(EX, out, cond)
            v = self.linear(out[:, -H:].float(), "action_out_proj")
            xt = xt + dt * v
            t = t + dt
            step_ms.append((time.perf_counter() - s0) * 1e3)
        if timings is not None:
            timings.update(vision_ms=(t1 - t0) * 1e3, prefix_ms=(t2 - t1) * 1e3, step_ms=step_ms)
        return xt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--case", help="golden case: check actions instead of timing")
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=-1, help="valid prompt tokens, the rest padding (default: all)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    t0 = time.perf_counter()
    m = Pi0(args.checkpoint, dtype)
    load_s = time.perf_counter() - t0
    c = m.c
    with torch.inference_mode():
        if args.case:
            case, meta = read_safetensors(args.case)
            cams = c["cameras"]
            f = lambda k: case[k].float() if case[k].dtype != torch.bfloat16 else case[k].float()
            acts = m.sample([f("image." + k) for k in cams], [case["image_mask." + k].bool() for k in cams],
                            case["tokens"], case["token_mask"].bool(), f("state"), f("noise"), int(meta["num_steps"]))
            exp = case["expect.actions"]
            err = (acts - exp).abs().max().item() / exp.abs().max().item()
            pcc = np.corrcoef(acts.flatten().numpy(), exp.flatten().numpy())[0, 1]
            print(json.dumps({"pcc": float(pcc), "rel_err": err}))
            sys.exit(0 if pcc > 0.999 else 1)
        B, H, W = 1, c["image_height"], c["image_width"]
        g = torch.Generator().manual_seed(0)
        imgs = [torch.rand(B, 3, H, W, generator=g) * 2 - 1 for _ in c["cameras"]]
        masks = [torch.tensor([i < args.cameras]) for i in range(len(c["cameras"]))]
        L = c["max_token_len"]
        tokens = (torch.arange(L)[None] * 7919 % (c["vlm"]["vocab_size"] - 2) + 2).int()
        valid = L if args.tokens < 0 else min(args.tokens, L)
        tmask = (torch.arange(L) < valid)[None].expand(B, L).clone()
        state = torch.zeros(B, c["action_dim"])
        noise = torch.randn(B, c["action_horizon"], c["action_dim"], generator=g)
        totals, vis, pre, step = [], [], [], []
        for r in range(args.runs + 1):
            tm = {}
            s = time.perf_counter()
            m.sample(imgs, masks, tokens, tmask, state, noise, c["num_steps"], tm)
            if r == 0:
                continue
            totals.append((time.perf_counter() - s) * 1e3)
            vis.append(tm["vision_ms"]); pre.append(tm["prefix_ms"]); step.append(float(np.median(tm["step_ms"])))
            print(f"run {r}: {totals[-1]:.0f} ms", file=sys.stderr)
        med = lambda v: float(np.median(v))
        print(json.dumps({"impl": f"pytorch {torch.__version__} eager {args.dtype}", "threads": args.threads,
                          "cameras": args.cameras, "tokens": valid, "load_s": load_s, "total_ms": med(totals),
                          "stages_ms": {"vision": med(vis), "prefix": med(pre), "denoise_step": med(step)}}, indent=2))


if __name__ == "__main__":
    main()
