#!/usr/bin/env python3
"""tools/torch_peers.py CHAPTER CSV: append PyTorch peer rows to a chapter's CSV.

Optional: `make bench` calls it only where PyTorch with CUDA is installed. It measures
the way the harness does (each input checked against a float64 reference first; CUDA
events around each repetition; L2 flushed before each; the repetitions queued back to
back with one wait at the end, as the harness queues them; the median) and writes rows in the
same format, with pct_sol against the ceiling the chapter's own rows were measured with.
"""
import csv
import inspect
import math
import sys
import time

import torch

SIZES = {"reduce": [2**20, 2**22, 2**25, 2**28], "elementwise": [2**20, 2**24, 2**25, 2**28],
         "atomics": [2**20, 2**25, 2**28]}
SCATTER_PCTS = [1, 10, 100]
SOFTMAX_SHAPES = [(1048576, 32), (262144, 128), (65536, 512), (32768, 1024), (16384, 2048), (8192, 4096),
                  (4096, 8192), (2048, 16384), (1024, 32768), (32768, 16), (65536, 32), (131072, 64),
                  (1048576, 512)]
SIZES["softmax"] = SOFTMAX_SHAPES
UPSAMPLE_SHAPES = [(16, 64, 256, 256, 2), (1, 3, 224, 224, 2), (8, 512, 64, 64, 2)]  # N, C, H, W, scale
SIZES["upsample"] = UPSAMPLE_SHAPES
INDEX_ADD_SHAPES = [((1048576, 128), 0, 1048576), ((65536, 1024), 0, 65536), ((4096, 1024), 0, 262144),
                    ((1048576, 16), 0, 4194304), ((4096, 64, 128), 0, 8192), ((64, 4096, 128), 1, 8192),
                    ((512, 64), 0, 4194304)]  # self's shape, dim, number of indices
SIZES["index_add"] = INDEX_ADD_SHAPES  # out has this percentage of src's rows (rows of 128 halves)
GEMM_SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
               (4096, 11008, 4096), (4096, 4096, 11008), (4096, 14336, 4096)]  # M, N, K
SIZES["gemm"] = GEMM_SHAPES
SIZES["gemm_hopper"] = GEMM_SHAPES
# b, h, s, d, causal: FlashAttention's shapes, b s = 16384 tokens and h d = 2048, in the
# chapter's order of sizes
ATTENTION_SHAPES = [(16384 // s, 2048 // d, s, d, causal) for d in (128, 64) for causal in (False, True)
                    for s in (512, 1024, 2048, 4096, 8192, 16384)]
SIZES["attention"] = ATTENTION_SHAPES
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
DIGITS = {"f32": 24, "f16": 11, "bf16": 8}  # significand bits, the implicit one too
MIN_EXP = {"f32": -126, "f16": -14, "bf16": -126}  # the smallest normal number is 2^MIN_EXP
LIBRARY_ROUNDINGS = 3  # a library may round to the element type 3 times before the last


def half_spacing(dtype, x):
    """The harness's half_spacing: half the gap between the values of dtype around |x|
    (a float64 tensor), subnormals included."""
    _, e = torch.frexp(x.abs())
    e = torch.where((x == 0) | (e - 1 < MIN_EXP[dtype]), MIN_EXP[dtype] + 1, e)
    return torch.exp2((e - DIGITS[dtype] - 1).double())


def error_bound(dtype, ref, arith, extra=0, scale=None):
    """The harness's error_bound: the float arithmetic's error, the final rounding to dtype
    at the computed value, and `extra` roundings on the way of values at most `scale`."""
    b = arith + half_spacing(dtype, ref.abs() + arith)
    if isinstance(extra, (int, float)) and extra == 0:
        return b
    return b + extra * half_spacing(dtype, scale)  # extra: a number, or a tensor per element


def flush_l2(buf):
    buf.sum()  # reads twice the L2, leaving it full of other lines


def flushed_launch(fn, buf):
    """Flushes L2, then runs fn between two events; returns the events (not waited for)."""
    flush_l2(buf)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    stop.record()
    return start, stop


def time_us(fn, buf, warmup=5, min_reps=20, max_reps=300, target_ms=200.0):
    """The harness's time_launches: warm-up launches (each waited for, the last one
    estimating a launch's time), then the repetitions queued back to back, each a flush
    and an event pair, and one wait at the end; the median."""
    est_ms = 0.0
    for _ in range(warmup):
        start, stop = flushed_launch(fn, buf)
        stop.synchronize()
        est_ms = start.elapsed_time(stop)
    reps = max_reps
    if est_ms > 0 and target_ms / est_ms < reps:
        reps = int(target_ms / est_ms)
    reps = max(reps, min_reps)
    events = [flushed_launch(fn, buf) for _ in range(reps)]
    torch.cuda.synchronize()
    times = sorted(1000.0 * start.elapsed_time(stop) for start, stop in events)
    return times[len(times) // 2]


def ceiling_gbps(rows, name):
    for r in rows:
        if r["kind"] == "ceiling" and r["version"] == name:
            return float(r["gbps"])
    sys.exit(f"torch_peers: no {name} row in the CSV: run the chapter's --bench first")


def reduce_rows(rows, buf):
    sol = ceiling_gbps(rows, "read-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    for n in SIZES["reduce"]:
        x = torch.rand(n, device="cuda", generator=gen) * 2.0 - 0.5  # uniform in [-0.5, 1.5)
        ref = x.double().sum().item()
        tol = 4.0 * 2.0**-23 * x.double().abs().sum().item()  # the chapter's tolerance
        got = torch.sum(x).item()
        err = abs(got - ref)
        ok = err <= tol  # NaN fails
        t = time_us(lambda: torch.sum(x), buf) if ok else float("nan")
        gbps = 4.0 * n / (t * 1e3)
        print(f"  torch.sum  f32 {n:>12} {t:10.2f} us {gbps:8.1f} GB/s  {'pass' if ok else 'FAIL'}")
        out.append(["torch.sum", "peer", "f32", str(n), f"{t:.3f}", f"{gbps:.1f}", f"{n / (t * 1e6):.4f}",
                    f"{100.0 * gbps / sol:.1f}", f"{err / max(abs(ref), 1e-30):.2e}",
                    "pass" if ok else "fail"])
    return out


def row(name, dtype, n, t, nbytes, sol, err, ok, flops=0.0):
    """A peer's CSV row; flops, the chapter's count of operations, gives the roofline's TFLOP/s."""
    gbps = nbytes / (t * 1e3)
    print(f"  {name:16} {dtype:4} {n:>12} {t:10.2f} us {gbps:8.1f} GB/s  {'pass' if ok else 'FAIL'}")
    return [name, "peer", dtype, str(n), f"{t:.3f}", f"{gbps:.1f}", f"{flops / (t * 1e6):.4f}" if flops else "",
            f"{100.0 * gbps / sol:.1f}", f"{err:.2e}", "pass" if ok else "fail"]


def elementwise_rows(rows, buf):
    sol = ceiling_gbps(rows, "copy-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    for dtype, tt in DTYPES.items():
        for n in SIZES["elementwise"]:
            a = (torch.rand(n, device="cuda", generator=gen) * 4.0 - 1.0).to(tt)  # [-1, 3)
            b = (torch.rand(n, device="cuda", generator=gen) * 1.5 + 0.5).to(tt)  # [0.5, 2)
            ref = a.double() * b.double()
            got = torch.mul(a, b).double()
            ok = bool(((got - ref).abs() <= error_bound(dtype, ref, 0.0)).all().item())  # NaN fails
            rel = ((got - ref).abs() / ref.abs().clamp_min(1e-30)).max().item()
            t = time_us(lambda: torch.mul(a, b), buf) if ok else float("nan")
            out.append(row("torch.mul", dtype, n, t, 3.0 * n * a.element_size(), sol, rel, ok, 1.0 * n))
            del a, b, ref, got
    return out


def atomics_rows(rows, buf):
    """torch.dot on f16 (the chapter's dot product) and zeros().index_add_ (its scatter-add)."""
    sol = ceiling_gbps(rows, "read-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    u = 2.0**-11  # half an ulp of half, relative
    for n in SIZES["atomics"]:
        # uniform in [2^-8, 2^-6], as in the chapter; one rounding to half plus float sums
        x = (torch.rand(n, device="cuda", generator=gen) * (2.0**-6 - 2.0**-8) + 2.0**-8).half()
        y = (torch.rand(n, device="cuda", generator=gen) * (2.0**-6 - 2.0**-8) + 2.0**-8).half()
        ref = torch.dot(x.double(), y.double()).item()
        got = torch.dot(x, y).item()
        err = abs(got - ref)
        ok = err <= error_bound("f16", torch.tensor(ref, dtype=torch.float64), 2.0**-12 * abs(ref)).item()  # NaN fails
        t = time_us(lambda: torch.dot(x, y), buf) if ok else float("nan")
        out.append(row("torch.dot", "f16", n, t, 4.0 * n, sol, err / max(abs(ref), 1e-30), ok, 2.0 * n))
        del x, y
    for n in SIZES["atomics"]:
        for pct in SCATTER_PCTS:
            rows_, cols = n // 128, 128
            out_rows = max(1, rows_ * pct // 100)
            src = (torch.rand(rows_, cols, device="cuda", generator=gen) * 1.5 + 0.5).half()
            index = torch.randint(0, out_rows, (rows_,), device="cuda", generator=gen, dtype=torch.int32)
            ref = torch.zeros(out_rows, cols, device="cuda", dtype=torch.float64).index_add_(0, index, src.double())
            hits = torch.bincount(index, minlength=out_rows).double().unsqueeze(1)
            got = torch.zeros(out_rows, cols, device="cuda", dtype=torch.float16).index_add_(0, index, src).double()
            bound = 1.01 * (hits - 1).clamp_min(0) * u * ref  # the chapter's bound: (k-1) u sum
            ok = bool(((got - ref).abs() <= bound).all().item())  # NaN fails
            rel = ((got - ref).abs() / ref.clamp_min(1e-30)).max().item()

            def run():
                torch.zeros(out_rows, cols, device="cuda", dtype=torch.float16).index_add_(0, index, src)

            t = time_us(run, buf) if ok else float("nan")
            size = f"2^{n.bit_length() - 1}:{pct}"
            nbytes = 2.0 * n + 4.0 * rows_ + 2.0 * out_rows * cols
            out.append(row("torch.index_add_", "f16", size, t, nbytes, sol, rel, ok, 1.0 * n))
            del src, index, ref, hits, got, bound
    return out


def softmax_rows(rows, buf):
    """torch.softmax over the last dimension and its backward, with the chapter's bounds."""
    sol = ceiling_gbps(rows, "copy-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    for dtype, tt in DTYPES.items():
        for r, c in SOFTMAX_SHAPES:
            size = f"{r}x{c}"
            x = (torch.rand(r, c, device="cuda", generator=gen) * 8.0 - 2.0).to(tt)  # [-2, 6)
            dy = (torch.rand(r, c, device="cuda", generator=gen) * 3.0 - 1.0).to(tt)  # [-1, 2)
            ref = torch.softmax(x.double(), -1)
            y = torch.softmax(x, -1)
            # a library, as the chapter's cuDNN peer: a whole row as the chain of additions,
            # the exponential, and three roundings to the element type before the last
            arith = 1.01 * (c + 10) * 2.0**-24
            bound = error_bound(dtype, ref, arith * ref, LIBRARY_ROUNDINGS, ref)
            ok = bool(((y.double() - ref).abs() <= bound).all().item())
            rel = ((y.double() - ref).abs() / ref.clamp_min(1e-30)).max().item()
            t = time_us(lambda: torch.softmax(x, -1), buf) if ok else float("nan")
            out.append(row("torch.softmax", dtype, size, t, 2.0 * r * c * x.element_size(), sol, rel, ok, 5.0 * r * c))
            yin = ref.to(tt)
            yd, gd = yin.double(), dy.double()
            d = (gd * yd).sum(-1, keepdim=True)
            dref = yd * (gd - d)
            scale = yd.abs() * (gd.abs() + (gd * yd).abs().sum(-1, keepdim=True))
            dx = torch._softmax_backward_data(dy, yin, -1, tt)
            err = (dx.double() - dref).abs()
            ok = bool((err <= error_bound(dtype, dref, arith * scale, LIBRARY_ROUNDINGS, scale)).all().item())
            rel = (err / scale.clamp_min(1e-30)).max().item()
            t = time_us(lambda: torch._softmax_backward_data(dy, yin, -1, tt), buf) if ok else float("nan")
            out.append(row("torch.softmax-bwd", dtype, size, t, 3.0 * r * c * x.element_size(), sol, rel, ok, 4.0 * r * c))
            del x, dy, ref, y, yin, yd, gd, d, dref, scale, dx, err
            torch.cuda.empty_cache()
    return out


def upsample_rows(rows, buf):
    """F.interpolate(mode='nearest') forward, NCHW and channels last, and its backward
    (aten's upsample_nearest2d_backward), with the chapter's bounds."""
    import torch.nn.functional as F
    sol = ceiling_gbps(rows, "copy-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    for dtype, tt in DTYPES.items():
        for n, c, h, w, s in UPSAMPLE_SHAPES:
            size = f"{n}x{c}x{h}x{w}:{s}"
            oh, ow = h * s, w * s
            nbytes = (n * c * h * w + n * c * oh * ow) * torch.tensor([], dtype=tt).element_size()
            x = (torch.rand(n, c, h, w, device="cuda", generator=gen) * 4.0 - 1.0).to(tt)
            ref = x.repeat_interleave(s, 2).repeat_interleave(s, 3)  # a copy: exact in any type
            for name, xin in (("torch.interpolate", x), ("torch.interpolate-nhwc", x.contiguous(memory_format=torch.channels_last))):
                y = F.interpolate(xin, scale_factor=s, mode="nearest")
                ok = bool((y == ref).all().item())
                t = time_us(lambda: F.interpolate(xin, scale_factor=s, mode="nearest"), buf) if ok else float("nan")
                out.append(row(name, dtype, size, t, nbytes, sol, 0.0 if ok else float("inf"), ok))
                del y
            del x, ref
            dy = (torch.rand(n, c, oh, ow, device="cuda", generator=gen) * 3.0 - 1.0).to(tt)
            blocks = dy.double().reshape(n, c, h, s, w, s)
            dref = blocks.sum(dim=(3, 5))
            scale = blocks.abs().sum(dim=(3, 5))
            k = s * s
            def bwd():
                return torch.ops.aten.upsample_nearest2d_backward(dy, [oh, ow], [n, c, h, w], None, None)
            dx = bwd()
            arith = 1.01 * (k - 1) * 2.0**-24 * scale
            err = (dx.double() - dref).abs()
            ok = bool((err <= error_bound(dtype, dref, arith, LIBRARY_ROUNDINGS, scale)).all().item())
            rel = (err / scale.clamp_min(1e-30)).max().item()
            t = time_us(bwd, buf) if ok else float("nan")
            out.append(row("torch.interpolate-bwd", dtype, size, t, nbytes, sol, rel, ok))
            del dy, blocks, dref, scale, dx, err
            torch.cuda.empty_cache()
    return out


def index_add_rows(rows, buf):
    """self.index_add_(dim, index, source, alpha=0.75), int64 index, and the same with
    torch.use_deterministic_algorithms(True), with the chapter's bound for atomics in the
    element type (two roundings per slice added) plus a library's three. As in the
    chapter, the timed runs repeat in place with alpha's sign alternating, so that self
    stays near self0."""
    sol = ceiling_gbps(rows, "copy-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    alpha = 0.75
    for dtype, tt in DTYPES.items():
        for shape, dim, nidx in INDEX_ADD_SHAPES:
            size = "x".join(str(d) for d in shape) + f":{dim}:{nidx}"
            src_shape = list(shape)
            src_shape[dim] = nidx
            self0 = (torch.rand(shape, device="cuda", generator=gen) * 3.0 - 1.0).to(tt)
            src = (torch.rand(src_shape, device="cuda", generator=gen) * 3.0 - 1.0).to(tt)
            index = torch.randint(0, shape[dim], (nidx,), device="cuda", generator=gen, dtype=torch.int64)
            ref = self0.double().index_add(dim, index, src.double(), alpha=alpha)
            scale = self0.double().abs().index_add(dim, index, src.double().abs(), alpha=alpha)
            hits = torch.bincount(index, minlength=shape[dim]).double()
            view = [1] * len(shape)
            view[dim] = shape[dim]
            k = hits.reshape(view)
            arith = 1.01 * (k + 2) * 2.0**-24 * scale
            e = torch.tensor([], dtype=tt).element_size()
            nbytes = e * (src.numel() + 2 * self0.numel()) + 8 * nidx
            for name, deterministic in (("torch.index_add_", False), ("torch.index_add_-deterministic", True)):
                torch.use_deterministic_algorithms(deterministic)
                try:
                    work = self0.clone()
                    work.index_add_(dim, index, src, alpha=alpha)
                except RuntimeError as err:
                    print(f"  {name} {dtype} {size}: not offered ({err})")
                    torch.use_deterministic_algorithms(False)
                    continue
                got_err = (work.double() - ref).abs()
                ok = bool((got_err <= error_bound(dtype, ref, arith, 2 * k + LIBRARY_ROUNDINGS, scale)).all().item())
                rel = (got_err / scale.clamp_min(1e-30)).max().item()
                sign = [1.0]

                def run():  # -alpha, +alpha, ...: work was left at self0 + alpha * (the slices)
                    sign[0] = -sign[0]
                    work.index_add_(dim, index, src, alpha=sign[0] * alpha)

                # time the deterministic algorithm, not the NaN fill of its temporaries that
                # deterministic mode adds by default (a debugging aid)
                try:
                    import torch.utils.deterministic as fill  # PyTorch 2.1 and newer
                except ImportError:
                    fill = None
                saved = fill.fill_uninitialized_memory if fill else None
                if fill:
                    fill.fill_uninitialized_memory = False
                t = time_us(run, buf) if ok else float("nan")
                if fill:
                    fill.fill_uninitialized_memory = saved
                torch.use_deterministic_algorithms(False)
                out.append(row(name, dtype, size, t, nbytes, sol, rel, ok, 2.0 * src.numel()))
                del work, got_err
            del self0, src, index, ref, scale, hits, k, arith
            torch.cuda.empty_cache()
    return out


def gemm_rows(rows, buf):
    """C.addmm_(A, B, beta=-0.5, alpha=0.75), B given (n, k) in the half types as in the
    chapter, with the chapter's bound: (K + 3) 2^-24 of each element's scale, then the
    final rounding. TF32 stays off for float32."""
    torch.backends.cuda.matmul.allow_tf32 = False
    ceilings = {r["version"]: float(r["tflops"]) for r in rows if r["kind"] == "ceiling" and r["tflops"]}
    copy = ceiling_gbps(rows, "copy-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    alpha, beta = 0.75, -0.5
    present = {r["dtype"] for r in rows if r["kind"] != "ceiling"}  # the chapter's element types
    tensor_ceiling = "wgmma-ceiling" if "wgmma-ceiling" in ceilings else "mma-sync-ceiling"
    for dtype, tt in (("f32", torch.float32), ("bf16", torch.bfloat16), ("f16", torch.float16)):
        if dtype not in present:
            continue
        sol = ceilings.get("fma-ceiling" if dtype == "f32" else tensor_ceiling)
        for m, n, k in GEMM_SHAPES:
            size = f"{m}x{n}x{k}"
            a = (torch.rand(m, k, device="cuda", generator=gen) * 2.0 - 1.0).to(tt)
            stored = (torch.rand(n, k, device="cuda", generator=gen) * 2.0 - 1.0).to(tt)
            if dtype == "f32":  # row-major (k, n) in float32, (n, k) in the half types
                stored = stored.t().contiguous()
            b = stored if dtype == "f32" else stored.t()
            c0 = (torch.rand(m, n, device="cuda", generator=gen) * 2.0 - 1.0).to(tt)
            ref = alpha * (a.double() @ b.double()) + beta * c0.double()
            scale = abs(alpha) * (a.double().abs() @ b.double().abs()) + abs(beta) * c0.double().abs()
            work = c0.clone()
            work.addmm_(a, b, beta=beta, alpha=alpha)
            err = (work.double() - ref).abs()
            ok = bool((err <= error_bound(dtype, ref, (k + 3.0) * 2.0**-24 * scale)).all().item())  # NaN fails
            rel = (err / scale.clamp_min(1e-30)).max().item()
            del ref, scale, err
            t = time_us(lambda: work.addmm_(a, b, beta=beta, alpha=alpha), buf) if ok else float("nan")
            e = a.element_size()
            nbytes = e * (m * k + k * n + 2 * m * n)
            tflops = 2.0 * m * n * k / (t * 1e6)
            print(f"  torch.addmm_ {dtype:4} {size:>16} {t:10.2f} us {tflops:8.1f} TFLOP/s  {'pass' if ok else 'FAIL'}")
            out.append(["torch.addmm_", "peer", dtype, size, f"{t:.3f}", f"{nbytes / (t * 1e3):.1f}", f"{tflops:.2f}",
                        f"{100.0 * tflops / sol:.1f}" if sol else f"{100.0 * nbytes / (t * 1e3) / copy:.1f}",
                        f"{rel:.2e}", "pass" if ok else "fail"])
            del a, b, stored, c0, work
            torch.cuda.empty_cache()
    return out


def attention_inputs(b, h, s, d, tt, gen):
    """The chapter's inputs: uniform in [-1, 2), one query row in eight times 24 and one in
    eight times -24, rounded to the element type."""
    q = torch.rand(b, h, s, d, device="cuda", generator=gen) * 3.0 - 1.0
    pick = torch.rand(b, h, s, 1, device="cuda", generator=gen)
    gain = torch.ones_like(pick)
    gain[pick < 0.125] = 24.0
    gain[(pick >= 0.125) & (pick < 0.25)] = -24.0
    q = (q * gain).to(tt)
    k = (torch.rand(b, h, s, d, device="cuda", generator=gen) * 3.0 - 1.0).to(tt)
    v = (torch.rand(b, h, s, d, device="cuda", generator=gen) * 3.0 - 1.0).to(tt)
    return q, k, v


def p_rounding_of(dtype):
    """The chapter's p_rounding_of: rel = 2^-t and floor = max(2^(emin - t), 2^-126)
    (float's smallest normal: an exponential may flush below it)."""
    return 2.0**-DIGITS[dtype], max(2.0**(MIN_EXP[dtype] - DIGITS[dtype]), 2.0**-126)


MAX_LAG = 6.0  # the chapter's MAX_LAG: how far below the row's maximum a running maximum may stay


def attention_reference(q, k, v, seen, scale, dtype, real):
    """The chapter's reference (reference_row, attention_reference) of query rows q (n, r, d)
    against k, v (n, sk, d), in `real` (torch.float32 or torch.float64); seen (n or 1, r):
    how many keys each row sees. Returns O, the float arithmetic's bound on each element
    (before the final rounding), its scale A, the LSE and its bound."""
    u = 2.0**-24
    d, sk = q.shape[-1], k.shape[-2]
    qf, kf, vf = q.to(real), k.to(real), v.to(real)
    keep = torch.arange(sk, device=q.device) < seen.unsqueeze(-1)  # (n, r, sk)
    x = (scale * (qf @ kf.transpose(-1, -2))).masked_fill(~keep, float("-inf"))
    a = scale * (qf.abs() @ kf.abs().transpose(-1, -2))
    m = x.amax(-1, keepdim=True)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)  # a row that sees no key: p = 0
    p = torch.exp(x - m)
    l = p.sum(-1, keepdim=True)
    inv = torch.where(l > 0, 1.0 / l, torch.zeros_like(l))
    zero = torch.zeros_like(p)
    budget = torch.where(keep, ((d + 2) * a + 4 * (x.abs() + m.abs() + MAX_LAG) + 4) * u, zero)  # Delta_j u
    rel, floor = p_rounding_of(dtype)
    rho = torch.where(keep, 2.0 * torch.clamp(p * rel, min=floor), zero)  # P rounded to the element type
    del x, a, keep, zero
    f = (p * budget).sum(-1, keepdim=True) * inv
    o = (p @ vf) * inv
    big_a = (p @ vf.abs()) * inv
    err = ((p * budget + rho) @ vf.abs()) * inv
    del p, budget, rho
    gamma = (2.0 * sk + 4.0) * u
    arith_o = err + gamma * big_a + o.abs() * (f + gamma + u)
    log_l = torch.log(l)
    lse = torch.where(l > 0, m + log_l, torch.full_like(l, float("-inf")))
    arith_lse = torch.where(l > 0, f + gamma + (6.0 + 6.0 * (log_l + MAX_LAG) + lse.abs() + m.abs() + MAX_LAG) * u, torch.zeros_like(l))
    return o, arith_o, big_a, lse.squeeze(-1), arith_lse.squeeze(-1)


def attention_compare(got_o, got_lse, ref, factor, dtype):
    """Mismatches and the largest relative error of O (against A) and of the LSE, within
    factor times the arithmetic's bound plus the final rounding; NaN fails, and a LSE of
    -inf passes only where the reference's is -inf."""
    o, arith_o, big_a, lse, arith_lse = ref
    err = (got_o.double() - o.double()).abs()
    bad = int((~(err <= error_bound(dtype, o.double(), factor * arith_o.double()))).sum().item())
    rel = (err / big_a.double().clamp_min(1e-30)).max().item()
    g, r = got_lse.double(), lse.double()
    finite = torch.isfinite(r)
    lerr = torch.where(finite, (g - r).abs(), torch.zeros_like(r))
    lbound = error_bound("f32", torch.where(finite, r, torch.zeros_like(r)), factor * arith_lse.double())
    ok = torch.where(finite, lerr <= lbound, g == r)
    bad += int((~ok).sum().item())
    rel = max(rel, (lerr / r.abs().clamp_min(1.0)).max().item())
    return bad, rel


def attention_check(got_o, got_lse, q, k, v, causal, scale, dtype, gen):
    """The chapter's check at its timed sizes: every element against the float32 reference
    (the bound doubled: that reference's own error has the same bound), a few heads at a
    time, and 256 rows against the float64 reference (the first and last rows, a tile's
    edges, and seeded ones)."""
    n, s, d = q.shape
    rows = torch.arange(s, device=q.device)
    seen = torch.clamp(rows + 1, max=s) if causal else torch.full_like(rows, s)  # s_q = s_k here
    bad, rel = 0, 0.0
    heads = max(1, 2**28 // (s * s))
    for h0 in range(0, n, heads):
        ref = attention_reference(q[h0:h0 + heads], k[h0:h0 + heads], v[h0:h0 + heads], seen.unsqueeze(0), scale,
                                  dtype, torch.float32)
        b, r = attention_compare(got_o[h0:h0 + heads], got_lse[h0:h0 + heads], ref, 2.0, dtype)
        bad, rel = bad + b, max(rel, r)
        del ref
    fixed = torch.tensor([0, n * s - 1, 1, 63, 64, 127, 128], device=q.device) % (n * s)
    picked = torch.cat([fixed, torch.randint(0, n * s, (256 - len(fixed),), device=q.device, generator=gen)])
    for c0 in range(0, 256, 16):
        part = picked[c0:c0 + 16]
        head, row = part // s, part % s
        ref = attention_reference(q[head, row].unsqueeze(1), k[head], v[head], seen[row].unsqueeze(1), scale, dtype,
                                  torch.float64)
        b, r = attention_compare(got_o[head, row].unsqueeze(1), got_lse[head, row].unsqueeze(1), ref, 1.0, dtype)
        bad, rel = bad + b, max(rel, r)
    return bad, rel


def attention_rows(rows, buf):
    """scaled_dot_product_attention's FlashAttention-2 and cuDNN backends, through the aten
    operators that return the LSE as well (the same work as the chapter's versions: O and
    the LSE), checked as the chapter checks its own versions, with its bound."""
    torch.backends.cuda.matmul.allow_tf32 = False
    ceilings = {r["version"]: float(r["tflops"]) for r in rows if r["kind"] == "ceiling" and r["tflops"]}
    sol = ceilings.get("wgmma-ceiling") or ceilings.get("mma-sync-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    peers = (("torch.sdpa-flash", lambda q, k, v, c, sc: torch.ops.aten._scaled_dot_product_flash_attention(
                 q, k, v, 0.0, c, False, scale=sc)),
             ("torch.sdpa-cudnn", lambda q, k, v, c, sc: torch.ops.aten._scaled_dot_product_cudnn_attention(
                 q, k, v, None, True, 0.0, c, False, scale=sc)))
    for dtype, tt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        for b, h, s, d, causal in ATTENTION_SHAPES:
            size = f"{b}x{h}x{s}x{s}x{d}" + ("c" if causal else "")
            scale = float(torch.tensor(1.0 / math.sqrt(d), dtype=torch.float32))  # the chapter's float scale
            q, k, v = attention_inputs(b, h, s, d, tt, gen)
            flops = 4.0 * b * h * s * s * d / (2.0 if causal else 1.0)
            nbytes = 4.0 * b * h * s * d * q.element_size() + 4.0 * b * h * s
            for name, op in peers:
                try:
                    res = op(q, k, v, causal, scale)
                except Exception as err:  # an operator this PyTorch lacks, or a shape or GPU it refuses
                    print(f"  {name} {dtype} {size}: not offered ({str(err).splitlines()[0]})")
                    continue
                got_o, got_lse = res[0].reshape(b * h, s, d), res[1].reshape(b * h, -1)[:, :s]
                bad, rel = attention_check(got_o, got_lse, q.reshape(b * h, s, d), k.reshape(b * h, s, d),
                                           v.reshape(b * h, s, d), causal, scale, dtype, gen)
                del res, got_o, got_lse
                ok = bad == 0
                t = time_us(lambda: op(q, k, v, causal, scale), buf) if ok else float("nan")
                tflops = flops / (t * 1e6)
                print(f"  {name:16} {dtype:4} {size:>22} {t:10.2f} us {tflops:8.1f} TFLOP/s  "
                      f"{'pass' if ok else f'FAIL ({bad} elements)'}")
                out.append([name, "peer", dtype, size, f"{t:.3f}", f"{nbytes / (t * 1e3):.1f}", f"{tflops:.2f}",
                            f"{100.0 * tflops / sol:.1f}" if sol else "", f"{rel:.2e}", "pass" if ok else "fail"])
                torch.cuda.empty_cache()
            del q, k, v
            torch.cuda.empty_cache()
    return out


# b, h, s, d, causal: the backward chapter's bench shapes, the forward's
SIZES["attention_bwd"] = ATTENTION_SHAPES
BWD_PAIRS = 2**25  # (query, key) pairs of the double reference at a time: 256 MiB a matrix
BWD_CHECKED = 2**28  # pairs checked per shape: whole heads, at least two


def attention_bwd_terms(q, k, v, g, seen, scale, dtype):
    """query_terms of query rows q, g (n, r, d) against the keys k, v (n, sk, d): the exact
    LSE, D = dO . O with O exact, E^D and e. The given O and LSE are the peer's own forward's,
    so their errors are bounded by the forward chapter's bound for a version, from the same
    double reference (attention_reference), factor 1: E^O = error_bound(dtype, O, arith_o)
    (the float arithmetic, then half a gap of the element type at |O| + arith_o: O's rounding),
    e = error_bound(f32, LSE, arith_lse) (the LSE's rounding to float), 0 where no key is seen.
    Returns the forward reference too, to check the peer's forward against it."""
    fwd = attention_reference(q, k, v, seen, scale, dtype, torch.float64)
    o, arith_o, _, lse, arith_lse = fwd
    finite = torch.isfinite(lse)
    lse0 = torch.where(finite, lse, torch.zeros_like(lse))
    o_err = error_bound(dtype, o, arith_o)
    lse_err = torch.where(finite, error_bound("f32", lse0, arith_lse), torch.zeros_like(lse))
    gd = g.double()
    dsum = (gd * o).sum(-1)
    dsum_err = (gd.abs() * o_err).sum(-1) + q.shape[-1] * 2.0**-24 * (gd * o).abs().sum(-1)  # rowsum_error
    return fwd, (lse0, lse_err, dsum, dsum_err)


def attention_bwd_pairs(q, k, v, g, seen, terms, scale, dtype):
    """pair_terms, reference_dq_row and the sums of reference_dkdv_row, in double, for query
    rows q, g (n, r, d) against all the keys k, v (n, sk, d) and the rows' terms: dQ of these
    rows, its float arithmetic's bound (before the final rounding) and its scale A^Q; and
    these rows' shares of dV, its terms' errors and A^V, and of dK / tau, its terms' errors
    / tau and A^K / tau (attention_bwd_finish completes them)."""
    u = 2.0**-24
    d, sk = q.shape[-1], k.shape[-2]
    lse, lse_err, dsum, dsum_err = (t.unsqueeze(-1) for t in terms)
    qf, kf, vf, gf = (t.double() for t in (q, k, v, g))
    keep = torch.arange(sk, device=q.device) < seen.unsqueeze(-1)  # (n, r, sk)
    zero = torch.zeros((), dtype=torch.float64, device=q.device)
    x = scale * (qf @ kf.transpose(-1, -2))
    a = scale * (qf.abs() @ kf.abs().transpose(-1, -2))
    p = torch.where(keep, torch.exp(torch.where(keep, x - lse, zero)), zero)  # 0 where the mask hides the key
    budget = (d + 2) * a + 4 * (x.abs() + lse.abs()) + 4  # score_budget, with the LSE for the maximum
    del x, a
    p_err = p * (budget * u + lse_err) + torch.where(keep, 2.0**-126, 0.0)  # and a result flushed to 0
    del budget
    dp = gf @ vf.transpose(-1, -2)
    b = gf.abs() @ vf.abs().transpose(-1, -2)
    ds = p * (dp - dsum)
    ds_err = p_err * (dp - dsum).abs() + p * (d * u * b + dsum_err) + 2 * u * p * (dp.abs() + dsum.abs())
    dpd = (dp - dsum).abs()
    del dp, b
    rel, floor = p_rounding_of(dtype)
    rho = torch.where(keep, 2.0 * torch.clamp(p * rel, min=floor), zero)  # p_rounding, over the pairs seen
    # ds_rounding: dS rounded, and the p it may be formed from
    sigma = torch.where(keep, 2.0 * torch.clamp(ds.abs() * rel, min=floor), zero) + rho * dpd
    del dpd
    del keep
    ka, qa, ga = kf.abs(), qf.abs(), gf.abs()
    dq = scale * (ds @ kf)
    scale_q = scale * (ds.abs() @ ka)
    arith_q = scale * ((ds_err + sigma) @ ka) + ((sk + 4.0) * u + u) * scale_q  # gradient_bound, gamma_k + u
    pt, dst = p.transpose(-1, -2), ds.transpose(-1, -2)
    parts = (pt @ gf, (p_err + rho).transpose(-1, -2) @ ga, pt @ ga,
             dst @ qf, (ds_err + sigma).transpose(-1, -2) @ qa, dst.abs() @ qa)
    return dq, arith_q, scale_q, parts


def attention_bwd_finish(parts, sq, scale):
    """reference_dkdv_row's last step, from the sums over all the queries: dK, dV, the bound
    on each before the final rounding (gamma_q A^V; tau times the terms' errors and
    (gamma_q + u) A^K) and their scales A^K, A^V."""
    u = 2.0**-24
    dv, err_v, scale_v, dk, err_k, scale_k = parts
    gamma = (sq + 4.0) * u
    dk, scale_k = scale * dk, scale * scale_k
    return (dk, scale * err_k + (gamma + u) * scale_k, scale_k), (dv, err_v + gamma * scale_v, scale_v)


def gradient_compare(got, ref, arith, big_a, dtype):
    """Mismatches of one gradient against its reference within its bound (factor 1) plus the
    final rounding, NaN failing, and its largest error relative to its scale."""
    err = (got.double() - ref).abs()
    bad = int((~(err <= error_bound(dtype, ref, arith))).sum().item())
    return bad, (err / big_a.clamp_min(1e-30)).max().item()


def attention_bwd_check(grads, got_o, got_lse, q, k, v, g, causal, scale, dtype, gen):
    """Every element of dQ, dK, dV of whole heads (at least two, BWD_CHECKED pairs or more,
    drawn by gen) against the chapter's double reference with its bound, factor 1; and the
    peer's forward O and LSE of those heads (got_lse None: O alone) against the forward
    chapter's bound for a version, which the gradients' bound takes as E^O and e. All arrays
    (b h, s, d) and (b h, s). Returns the mismatches and the gradients' largest relative error."""
    n, sq, d = q.shape
    sk = k.shape[1]
    rows = torch.arange(sq, device=q.device)
    seen = torch.clamp(rows + 1 + sk - sq, min=0, max=sk) if causal else torch.full_like(rows, sk)  # keys_seen
    count = min(n, max(2, BWD_CHECKED // (sq * sk)))
    heads = torch.randperm(n, device=q.device, generator=gen)[:count].sort().values
    group = max(1, min(count, BWD_PAIRS // (sq * sk)))  # heads at a time
    chunk = max(1, min(sq, BWD_PAIRS // (group * sk)))  # query rows at a time
    bad, rel = 0, 0.0
    for h0 in range(0, count, group):
        hs = heads[h0:h0 + group]
        qh, kh, vh, gh = q[hs], k[hs], v[hs], g[hs]
        oh = got_o[hs]
        lh = got_lse[hs] if got_lse is not None else None
        dqh, dkh, dvh = (t[hs] for t in grads)
        sums = None
        for i0 in range(0, sq, chunk):
            r = slice(i0, i0 + chunk)
            part_seen = seen[r].unsqueeze(0)
            fwd, terms = attention_bwd_terms(qh[:, r], kh, vh, gh[:, r], part_seen, scale, dtype)
            b_, _ = attention_compare(oh[:, r], lh[:, r] if lh is not None else fwd[3], fwd, 1.0, dtype)
            bad += b_
            dq, arith_q, scale_q, parts = attention_bwd_pairs(qh[:, r], kh, vh, gh[:, r], part_seen, terms, scale,
                                                              dtype)
            b_, r_ = gradient_compare(dqh[:, r], dq, arith_q, scale_q, dtype)
            bad, rel = bad + b_, max(rel, r_)
            sums = list(parts) if sums is None else [s_ + p_ for s_, p_ in zip(sums, parts)]
            del fwd, terms, dq, arith_q, scale_q, parts
        (dk, arith_k, scale_k), (dv, arith_v, scale_v) = attention_bwd_finish(sums, sq, scale)
        for got, ref, arith, big_a in ((dkh, dk, arith_k, scale_k), (dvh, dv, arith_v, scale_v)):
            b_, r_ = gradient_compare(got, ref, arith, big_a, dtype)
            bad, rel = bad + b_, max(rel, r_)
        del sums, dk, dv, arith_k, arith_v, scale_k, scale_v
    return bad, rel


FORWARD_RETURNS = ("output", "logsumexp", "cum_seq_q", "cum_seq_k", "max_q", "max_k", "philox_seed",
                   "philox_offset", "debug_attn_mask")  # the aten forwards' returns, where unnamed


def aten_backward(fwd_name, bwd_name, res, q, k, v, g, causal, scale):
    """The aten backward operator bwd_name as a function of nothing, its arguments taken by
    name from its schema (which differs between PyTorch versions): the forward fwd_name's
    returns res by their names, and grad_out, query, key, value, out, dropout_p, is_causal,
    scale, attn_bias; an argument it has a default for and that is not known keeps the
    default. Raises where the operator is missing or wants an argument not known here."""
    op = getattr(torch.ops.aten, bwd_name).default
    fwd_schema = getattr(torch.ops.aten, fwd_name).default._schema
    known = {(r.name or FORWARD_RETURNS[i]): x for i, (r, x) in enumerate(zip(fwd_schema.returns, res))}
    known.update(grad_out=g, query=q, key=k, value=v, out=res[0], dropout_p=0.0, is_causal=causal, scale=scale,
                 attn_bias=None)  # None: an undefined tensor, where the argument is a Tensor
    args, kwargs = [], {}
    for a in op._schema.arguments:
        if a.name in known:
            value = known[a.name]
        elif a.has_default_value():
            if a.kwarg_only:
                continue
            value = a.default_value
        else:
            raise RuntimeError(f"{bwd_name} wants {a.name}")
        if a.kwarg_only:
            kwargs[a.name] = value
        else:
            args.append(value)
    return lambda: op(*args, **kwargs)


def sdpa_backward(fwd_name, bwd_name, backend, q, k, v, g, causal, scale):
    """A peer's backward as a function of nothing returning dQ, dK, dV, with its forward's O
    and LSE (None where autograd keeps it) and the path taken: the forward run once, then the
    aten backward operator on its returns; failing that, autograd through
    scaled_dot_product_attention inside sdpa_kernel(backend), the backward being
    torch.autograd.grad(out, (q, k, v), dO, retain_graph=True). Raises where neither works."""
    try:
        if fwd_name == "_scaled_dot_product_flash_attention":
            res = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal, False, scale=scale)
        else:
            res = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, causal, False,
                                                                     scale=scale)
        g_o = torch.empty_like(res[0]).copy_(g)  # dO with O's strides, as a backward may want
        run = aten_backward(fwd_name, bwd_name, res, q, k, v, g_o, causal, scale)
        run()
        return run, res[0], res[1], "aten"
    except Exception as err:  # an operator this PyTorch lacks, a signature not understood, a shape refused
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"  {bwd_name}: {first}; trying autograd")
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel  # PyTorch 2.3 and newer
    qr, kr, vr = (t.detach().requires_grad_() for t in (q, k, v))
    with sdpa_kernel(getattr(SDPBackend, backend)):
        out = F.scaled_dot_product_attention(qr, kr, vr, is_causal=causal, scale=scale)
    run = lambda: torch.autograd.grad(out, (qr, kr, vr), g, retain_graph=True)
    run()
    return run, out.detach(), None, "autograd"


def attention_bwd_rows(rows, buf):
    """scaled_dot_product_attention's FlashAttention-2 and cuDNN backwards, after their own
    forward run once: dQ, dK, dV from Q, K, V, dO, O and the LSE, the chapter's work, checked
    against the chapter's double reference with its bound on whole heads, and only the
    backward timed."""
    torch.backends.cuda.matmul.allow_tf32 = False
    ceilings = {r["version"]: float(r["tflops"]) for r in rows if r["kind"] == "ceiling" and r["tflops"]}
    sol = ceilings.get("wgmma-ceiling") or ceilings.get("mma-sync-ceiling")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    peers = (("torch.sdpa-flash-bwd", "_scaled_dot_product_flash_attention",
              "_scaled_dot_product_flash_attention_backward", "FLASH_ATTENTION"),
             ("torch.sdpa-cudnn-bwd", "_scaled_dot_product_cudnn_attention",
              "_scaled_dot_product_cudnn_attention_backward", "CUDNN_ATTENTION"))
    measured = {(r["dtype"], r["size"]) for r in rows if r["kind"] != "ceiling"}  # the sizes the program timed
    for dtype, tt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        for b, h, s, d, causal in ATTENTION_SHAPES:
            size = f"{b}x{h}x{s}x{s}x{d}" + ("c" if causal else "")
            if (dtype, size) not in measured:
                continue
            scale = float(torch.tensor(1.0 / math.sqrt(d), dtype=torch.float32))  # the chapter's float scale
            q, k, v = attention_inputs(b, h, s, d, tt, gen)
            g = (torch.rand(b, h, s, d, device="cuda", generator=gen) * 2.0 - 1.0).to(tt)  # dO in [-1, 1)
            flops = 10.0 * b * h * s * s * d / (2.0 if causal else 1.0)
            nbytes = 8.0 * b * h * s * d * q.element_size() + 4.0 * b * h * s
            flat = [t.reshape(b * h, s, d) for t in (q, k, v, g)]
            for name, fwd_name, bwd_name, backend in peers:
                try:
                    run, got_o, got_lse, path = sdpa_backward(fwd_name, bwd_name, backend, q, k, v, g, causal, scale)
                except Exception as err:
                    first = str(err).splitlines()[0] if str(err) else type(err).__name__
                    print(f"  {name} {dtype} {size}: not offered ({first})")
                    continue
                grads = [t.reshape(b * h, s, d) for t in run()]
                got_o = got_o.reshape(b * h, s, d)
                got_lse = got_lse.reshape(b * h, -1)[:, :s] if got_lse is not None else None
                bad, rel = attention_bwd_check(grads, got_o, got_lse, *flat, causal, scale, dtype, gen)
                del grads
                torch.cuda.empty_cache()
                ok = bad == 0
                t = time_us(run, buf) if ok else float("nan")
                tflops = flops / (t * 1e6)
                print(f"  {name:20} {dtype:4} {size:>22} {t:10.2f} us {tflops:8.1f} TFLOP/s  "
                      f"{'pass' if ok else f'FAIL ({bad} elements)'} ({path})")
                out.append([name, "peer", dtype, size, f"{t:.3f}", f"{nbytes / (t * 1e3):.1f}", f"{tflops:.2f}",
                            f"{100.0 * tflops / sol:.1f}" if sol else "", f"{rel:.2e}", "pass" if ok else "fail"])
                del run, got_o, got_lse
                torch.cuda.empty_cache()
            del q, k, v, g, flat
            torch.cuda.empty_cache()
    return out

# b, h, s, d: the linear attention chapter's bench shapes, b s = 32768 tokens and h d = 2048,
# in its order of sizes
LINEAR_SHAPES = [(32768 // s, 2048 // d, s, d) for d in (128, 64) for s in (1024, 2048, 4096, 8192, 16384, 32768)]
SIZES["linear_attention"] = LINEAR_SHAPES
LINEAR_CHUNK = 256  # tokens per chunk of the float64 reference


def linear_inputs(b, h, s, d, tt, gen):
    """The chapter's inputs, in flash-linear-attention's layout (b, s, h, d): q and k uniform in
    [-1, 2) / sqrt(d), v uniform in [-1, 1.5), rounded to the element type."""
    unit = 1.0 / math.sqrt(d)
    q = ((torch.rand(b, s, h, d, device="cuda", generator=gen) * 3.0 - 1.0) * unit).to(tt)
    k = ((torch.rand(b, s, h, d, device="cuda", generator=gen) * 3.0 - 1.0) * unit).to(tt)
    v = (torch.rand(b, s, h, d, device="cuda", generator=gen) * 2.5 - 1.0).to(tt)
    return q, k, v


def linear_decays(h):
    """The chapter's decay_of_head: gamma_h = 1 - 2^(-5 - 7 h / (H - 1)) (31/32 for one head),
    rounded to float once; a float32 tensor of the h heads' decays."""
    return torch.tensor([1.0 - 2.0 ** (-5.0 - 7.0 * i / (h - 1 if h > 1 else 1)) for i in range(h)],
                        dtype=torch.float32, device="cuda")


def linear_reference(q, k, v, scale, dtype, gamma=None):
    """The chapter's reference and bound (linear_bound) for heads q, k, v of shape (n, s, d),
    in float64, by the chunkwise form (exact in any grouping): O, the float arithmetic's bound
    on each element before the final rounding, and the scale tau M. With gamma (n,), each head's
    decay: o_t = tau sum gamma^(t-s) (q_t . k_s) v_s, M decayed alike, and the bound's two terms
    of decay, delta_t (decay_budget) and the floor X_t."""
    u = 2.0**-24
    n, s, d = q.shape
    c = LINEAR_CHUNK
    pad = (-s) % c
    qf, kf, vf = (torch.nn.functional.pad(t.double(), (0, 0, 0, pad)).reshape(n, -1, c, d) for t in (q, k, v))
    mask = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    if gamma is not None:  # the powers of each head's gamma, in float64
        lg = torch.log(gamma.double()).reshape(n, 1, 1, 1)  # ln gamma
        idx = torch.arange(c, dtype=torch.float64, device=q.device)
        decay = torch.exp(lg * (idx[:, None] - idx[None, :]).clamp_min(0.0)) * mask  # gamma^(i - j), j <= i
        rows = torch.exp(lg * (idx + 1.0).reshape(c, 1))  # gamma^(i + 1) on the state entering the chunk
        keys = torch.exp(lg * (c - 1.0 - idx).reshape(c, 1))  # gamma^(c - 1 - j) on V for the state
        across = torch.exp(lg.reshape(n, 1, 1) * c)  # gamma^c: the state from chunk to chunk
    o = torch.zeros_like(qf)
    m = torch.zeros_like(qf)
    for signed, out in ((True, o), (False, m)):
        a, b, w = (qf, kf, vf) if signed else (qf.abs(), kf.abs(), vf.abs())
        if gamma is None:
            kv = b.transpose(-1, -2) @ w  # (n, chunks, d, d): each chunk's K^T V
            before = kv.cumsum(1) - kv  # the state entering each chunk
            out.copy_(a @ before + ((a @ b.transpose(-1, -2)) * mask) @ w)
        else:
            kv = b.transpose(-1, -2) @ (w * keys)  # each chunk's K^T Gamma V
            before = torch.empty_like(kv)
            state = torch.zeros_like(kv[:, 0])
            for z in range(kv.shape[1]):
                before[:, z] = state
                state = state * across + kv[:, z]
            out.copy_((a @ before) * rows + ((a @ b.transpose(-1, -2)) * decay) @ w)
            del state
        del kv, before
    o, m = (t.reshape(n, -1, d)[:, :s] * scale for t in (o, m))  # m is tau M from here on
    vabs = vf.abs().reshape(n, -1, d)[:, :s].cumsum(1)
    qabs = q.double().abs().sum(-1, keepdim=True)
    eps, floor = p_rounding_of(dtype)
    seen = torch.arange(1, s + 1, device=q.device, dtype=torch.float64).reshape(1, s, 1)
    if gamma is None:
        arith = (2.0 * eps + (seen + d + 4.0) * u) * m + scale * 2.0 * floor * (vabs + qabs)
    else:
        delta = 9.0 * (seen / 64.0 + 2.0) - 12.0 * seen * lg.reshape(n, 1, 1)  # decay_budget, -ln gamma = |ln gamma|
        xabs = (q.double().abs() * k.double().abs().cumsum(1)).sum(-1, keepdim=True)  # X_t
        arith = (2.0 * eps + (seen + d + 4.0 + delta) * u) * m + scale * 2.0 * floor * (vabs + qabs + xabs)
    return o, arith, m


def linear_check(got, q, k, v, scale, dtype, gamma=None):
    """Every element of the output (b, s, h, d) against the float64 reference with the
    chapter's bound, a few heads at a time, with each head's decay gamma (h,) or without;
    returns mismatches and the largest error relative to tau M. NaN fails."""
    b, s, h, d = q.shape
    heads = lambda t: t.permute(0, 2, 1, 3).reshape(b * h, s, d)
    gq, qq, kk, vv = heads(got), heads(q), heads(k), heads(v)
    flat = gamma.repeat(b) if gamma is not None else None  # the decay of each of the b h heads
    bad, rel = 0, 0.0
    group = max(1, 2**24 // (s * d))
    for h0 in range(0, b * h, group):
        o, arith, big_m = linear_reference(qq[h0:h0 + group], kk[h0:h0 + group], vv[h0:h0 + group], scale, dtype,
                                           flat[h0:h0 + group] if flat is not None else None)
        err = (gq[h0:h0 + group].double() - o).abs()
        bad += int((~(err <= error_bound(dtype, o, arith))).sum().item())
        rel = max(rel, (err / (big_m + arith).clamp_min(1e-30)).max().item())
        del o, arith, big_m, err
    return bad, rel


def first_run(name, dtype, size, op):
    """op's first result, or None, said, where the library refuses the shape or the GPU."""
    try:
        return op()
    except Exception as err:
        print(f"  {name} {dtype} {size}: not offered ({str(err).splitlines()[0]})")
        return None


def linear_gradients_check(grads, q, k, v, g, scale, dtype):
    """dQ, dK, dV (b, s, h, d) each against the chapter's double reference and bound: each is the
    forward's product with the roles exchanged, dQ of (dO, V, K), dK of (V, dO, Q) and dV of
    (K, Q, dO), the last two read from the last token to the first. Returns mismatches and the
    largest relative error of the three."""
    dq, dk, dv = grads
    mirror = lambda t: t.flip(1)
    parts = ((lambda: dq, lambda: (g, v, k)),
             (lambda: mirror(dk), lambda: (mirror(v), mirror(g), mirror(q))),
             (lambda: mirror(dv), lambda: (mirror(k), mirror(q), mirror(g))))
    bad, rel = 0, 0.0
    for got, roles in parts:
        n, r = linear_check(got(), *roles(), scale, dtype)
        bad, rel = bad + n, max(rel, r)
        torch.cuda.empty_cache()
    return bad, rel


def linear_row(name, op, bad, rel, dtype, size, flops, nbytes, sol, buf):
    """One peer's row: timed where its check passed (bad == 0), NaN where it failed; pct_sol
    against the copy ceiling, TFLOP/s by the chapter's count."""
    ok = bad == 0
    t = time_us(op, buf) if ok else float("nan")
    print(f"  {name:26} {dtype:4} {size:>16} {t:10.2f} us  {'pass' if ok else f'FAIL ({bad} elements)'}")
    gbps = nbytes / (t * 1e3)
    return [name, "peer", dtype, size, f"{t:.3f}", f"{gbps:.1f}", f"{flops / (t * 1e6):.2f}",
            f"{100.0 * gbps / sol:.1f}", f"{rel:.2e}", "pass" if ok else "fail"]


def linear_attention_rows(rows, buf, done=frozenset(), checkpoint=lambda out: None):
    """flash-linear-attention's three forward kernels (chunk, fused chunk, fused recurrent),
    unnormalised and with the chapter's float scale, each checked on every element against the
    chapter's double reference and bound before it is timed; the same three run forward and
    then backward through autograd (rows NAME-fwd-bwd, against lfb4-segments), checked on every
    element of dQ, dK and dV and timed together; and causal softmax attention on cuDNN at the
    same shapes, checked as the attention chapter checks it, for the crossover. With the
    chapter's decay per head, fla's simple GLA chunk kernel (row torch.fla-simple-gla-chunk, the
    decay given as g_gamma = ln gamma per head), checked against the decayed reference and bound.
    Only at the sizes the program timed and not in done (the (dtype, size) pairs whose rows a
    resumed run keeps); fla is skipped where it is not importable. After each size the rows so
    far go to checkpoint, which writes the CSV: a run stopped midway keeps what it measured."""
    torch.backends.cuda.matmul.allow_tf32 = False
    sol = ceiling_gbps(rows, "copy-ceiling")
    try:
        from fla.ops.linear_attn import chunk_linear_attn, fused_chunk_linear_attn, fused_recurrent_linear_attn
        fla = (("torch.fla-chunk", chunk_linear_attn), ("torch.fla-fused-chunk", fused_chunk_linear_attn),
               ("torch.fla-fused-recurrent", fused_recurrent_linear_attn))
    except Exception as err:  # not installed, or its Triton or einops missing
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"  flash-linear-attention not importable ({first}): its rows are skipped")
        fla = ()
    try:
        from fla.ops.simple_gla import chunk_simple_gla
        per_head = "g_gamma" in inspect.signature(chunk_simple_gla).parameters  # else g, per token
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"  flash-linear-attention's simple GLA not importable ({first}): its row is skipped")
        chunk_simple_gla = None
    out = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    measured = {(r["dtype"], r["size"]) for r in rows if r["kind"] != "ceiling"}  # the sizes the program timed
    for dtype, tt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        for b, h, s, d in LINEAR_SHAPES:
            size = f"{b}x{h}x{s}x{d}"
            if (dtype, size) not in measured or (dtype, size) in done:
                continue
            began = time.monotonic()
            scale = float(torch.tensor(1.0 / math.sqrt(d), dtype=torch.float32))  # the chapter's float scale
            flops = 4.0 * b * h * s * d * d  # the chapter's count: the recurrent form's
            nbytes = 4.0 * b * h * s * d * 2
            q, k, v = linear_inputs(b, h, s, d, tt, gen)
            for name, fn in fla:
                op = lambda: fn(q, k, v, scale=scale, normalize=False)
                res = first_run(name, dtype, size, op)
                if res is None:
                    continue
                got = res[0]
                del res
                bad, rel = linear_check(got, q, k, v, scale, dtype)
                del got
                torch.cuda.empty_cache()
                out.append(linear_row(name, op, bad, rel, dtype, size, flops, nbytes, sol, buf))
            if chunk_simple_gla is not None:  # with the decay of each head
                gamma = linear_decays(h)
                log_gamma = torch.log(gamma.double()).float()  # ln gamma, rounded to float
                if per_head:
                    op = lambda: chunk_simple_gla(q, k, v, g_gamma=log_gamma, scale=scale)
                else:  # an older fla: the same decay at every token
                    g = log_gamma.reshape(1, 1, h).expand(b, s, h).contiguous()
                    op = lambda: chunk_simple_gla(q, k, v, g=g, scale=scale)
                name = "torch.fla-simple-gla-chunk"
                res = first_run(name, dtype, size, op)
                if res is not None:
                    got = res[0]
                    del res
                    bad, rel = linear_check(got, q, k, v, scale, dtype, gamma)
                    del got
                    torch.cuda.empty_cache()
                    out.append(linear_row(name, op, bad, rel, dtype, size, flops, nbytes, sol, buf))
            # forward then backward: dO drawn as V is, the gradients of sum(dO * O) by autograd
            g = (torch.rand(b, s, h, d, device="cuda", generator=gen) * 2.5 - 1.0).to(tt)
            qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
            for name, fn in fla:
                step = lambda: torch.autograd.grad(fn(qg, kg, vg, scale=scale, normalize=False)[0], (qg, kg, vg), g)
                grads = first_run(f"{name}-fwd-bwd", dtype, size, step)
                if grads is None:
                    continue
                bad, rel = linear_gradients_check(grads, q, k, v, g, scale, dtype)
                del grads
                torch.cuda.empty_cache()
                # the chapter's counts for forward and backward together: 4 + 10 b h s d^2, 4 + 7 arrays
                out.append(linear_row(f"{name}-fwd-bwd", step, bad, rel, dtype, size, 14.0 / 4.0 * flops,
                                      11.0 / 4.0 * nbytes, sol, buf))
            del q, k, v, g, qg, kg, vg
            torch.cuda.empty_cache()
            # causal softmax attention on cuDNN, O and the LSE, on the attention chapter's inputs and check
            q, k, v = attention_inputs(b, h, s, d, tt, gen)
            op = lambda: torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, True, False,
                                                                             scale=scale)
            name = "torch.sdpa-cudnn"
            res = first_run(name, dtype, size, op)
            if res is not None:
                bad, rel = attention_check(res[0].reshape(b * h, s, d), res[1].reshape(b * h, -1)[:, :s],
                                           q.reshape(b * h, s, d), k.reshape(b * h, s, d), v.reshape(b * h, s, d),
                                           True, scale, dtype, gen)
                del res
                torch.cuda.empty_cache()
                out.append(linear_row(name, op, bad, rel, dtype, size, flops, nbytes, sol, buf))
            del q, k, v
            torch.cuda.empty_cache()
            checkpoint(out)
            print(f"  ({dtype} {size}: {time.monotonic() - began:.0f} s)", flush=True)
    return out


def main():
    resume = sys.argv[3:] == ["--resume"]
    if len(sys.argv) != 3 and not resume:
        sys.exit("usage: tools/torch_peers.py CHAPTER CSV [--resume]")
    chapter, path = sys.argv[1], sys.argv[2]
    if chapter not in SIZES:
        print(f"torch_peers: no PyTorch peer for {chapter}")
        return 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0].keys()) if rows else []
    # --resume (the linear attention chapter, whose peers take longest): keep the PyTorch rows
    # already measured and measure only the sizes that have none
    resumed = [r for r in rows if resume and r["version"].startswith("torch.")]
    rows_kept = [r for r in rows if not r["version"].startswith("torch.")]

    def write(new):
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(fields)
            for r in rows_kept + resumed:
                w.writerow([r[k] or "" for k in fields])
            w.writerows(r + [""] * (len(fields) - len(r)) for r in new)  # a peer's resource columns stay empty

    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    buf = torch.zeros(2 * l2 // 4, dtype=torch.int32, device="cuda")
    print(f"torch_peers: {chapter} with PyTorch {torch.__version__}")
    if chapter == "linear_attention":
        new = linear_attention_rows(rows_kept, buf, {(r["dtype"], r["size"]) for r in resumed}, write)
    else:
        new = {"reduce": reduce_rows, "elementwise": elementwise_rows, "atomics": atomics_rows,
               "softmax": softmax_rows, "upsample": upsample_rows,
               "index_add": index_add_rows, "gemm": gemm_rows, "gemm_hopper": gemm_rows,
               "attention": attention_rows, "attention_bwd": attention_bwd_rows}[chapter](rows_kept, buf)
    write(new)
    missed = [f"{r[0]} {r[2]} {r[3]}" for r in new if r[-1] != "pass"]
    if missed:  # a peer that misses the chapter's bound is reported and not timed, not an error
        print(f"torch_peers: {len(missed)} PyTorch rows miss the chapter's tolerance (status fail, not timed): "
              + ", ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
