"""Checks the ctypes binding against a literal Python attention (MATH.md sections 1-3) and checks error returns.
Runs with any python3 (numpy optional): python3 native/python/test_fka.py. Library: FKA_LIBRARY / FKA_LIB_DIR."""
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fka  # noqa: E402

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print("FAIL", name, detail)


def literal_attention(q, k, v, heads=1, kv_heads=1, kernel="dot", scale=None, bandwidth=1.0, causal=False, sinks=None):
    """O_i = sum_j softmax_j(s_ij) v_j with the sink in the denominator; LSE [H x m]. Written out, no tricks."""
    m, n = len(q), len(k)
    d = len(q[0]) // heads
    dv = (len(v[0]) if v else 0) // kv_heads
    group = heads // kv_heads
    out = [[0.0] * (heads * dv) for _ in range(m)]
    lse = [[0.0] * m for _ in range(heads)]
    for h in range(heads):
        g = h // group
        for i in range(m):
            qi = q[i][h * d:(h + 1) * d]
            visible = [j for j in range(n) if not causal or j <= i + (n - m)]
            logits = []
            for j in visible:
                kj = k[j][g * d:(g + 1) * d]
                if kernel == "gaussian":
                    logits.append(-sum((a - b) ** 2 for a, b in zip(qi, kj)) / (2 * bandwidth ** 2))
                else:
                    logits.append((scale if scale else 1 / math.sqrt(d)) * sum(a * b for a, b in zip(qi, kj)))
            sink = sinks[h] if sinks is not None else -math.inf
            weights = [math.exp(s) for s in logits]
            total = sum(weights) + (math.exp(sink) if sink != -math.inf else 0.0)
            if total == 0:
                lse[h][i] = -math.inf
                continue
            lse[h][i] = math.log(total)
            for c in range(dv):
                out[i][h * dv + c] = sum(w * v[j][g * dv + c] for w, j in zip(weights, visible)) / total
    return out, lse


def max_diff(a, b):
    return max((abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)), default=0.0)


def rand_matrix(rng, rows, cols):
    return [[rng.uniform(-1, 1) for _ in range(cols)] for _ in range(rows)]


def main():
    print("fka", fka.version_string(), "ISA", fka.active_isa(), "numpy", "yes" if fka._np is not None else "no")
    check("version", fka.version()[:2] == (0, 1), str(fka.version()))

    # MATH.md section 1: q = (1, 0), keys (1, 0), (0, 1), V = I, scale 1.
    out, lse = fka.forward([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], scale=1.0, return_lse=True)
    check("MATH 1 example", abs(out[0][0] - 0.731059) < 1e-6 and abs(out[0][1] - 0.268941) < 1e-6
          and abs(lse[0] - 1.313262) < 1e-6, "%s %s" % (out, lse))

    rng = random.Random(6)
    q, k, v = rand_matrix(rng, 3, 4), rand_matrix(rng, 5, 4), rand_matrix(rng, 5, 2)
    for dtype, tol in (("f64", 1e-12), ("f32", 1e-5)):
        max_v = max(abs(x) for row in v for x in row)
        for options in ({}, {"scale": 0.5, "causal": True}, {"kernel": "gaussian", "bandwidth": 0.7},
                        {"sink": 0.3, "causal": True, "threads": 2}):
            got, got_lse = fka.forward(q, k, v, dtype=dtype, return_lse=True, **options)
            if dtype == "f32":  # the reference sees the float-rounded inputs
                import struct
                r = lambda mat: [[struct.unpack("f", struct.pack("f", x))[0] for x in row] for row in mat]
                qq, kk, vv = r(q), r(k), r(v)
            else:
                qq, kk, vv = q, k, v
            want, want_lse = literal_attention(qq, kk, vv, kernel=options.get("kernel", "dot"), scale=options.get("scale"),
                                               bandwidth=options.get("bandwidth", 1.0), causal=options.get("causal", False),
                                               sinks=[options["sink"]] if "sink" in options else None)
            check("forward %s %s" % (dtype, options), max_diff(got, want) <= tol * max_v,
                  "diff %g" % max_diff(got, want))
            check("lse %s %s" % (dtype, options),
                  all(abs(a - b) <= tol * max(1, abs(b)) for a, b in zip(got_lse, want_lse[0])), "%s %s" % (got_lse, want_lse))

    # Grouped-query attention with per-head sinks and a caller workspace.
    heads, kv_heads, d, dv = 4, 2, 3, 2
    q, k, v = rand_matrix(rng, 4, heads * d), rand_matrix(rng, 6, kv_heads * d), rand_matrix(rng, 6, kv_heads * dv)
    sinks = [0.1, -math.inf, 0.5, -1.0]
    got, got_lse = fka.forward_multihead(q, k, v, heads=heads, kv_heads=kv_heads, sink_logits=sinks, causal=True,
                                         return_lse=True, workspace=True)
    want, want_lse = literal_attention(q, k, v, heads=heads, kv_heads=kv_heads, causal=True, sinks=sinks)
    check("multihead GQA", max_diff(got, want) <= 1e-12, "diff %g" % max_diff(got, want))
    check("multihead LSE", max_diff(got_lse, want_lse) <= 1e-12, "diff %g" % max_diff(got_lse, want_lse))

    if fka._np is not None:
        np = fka._np
        big = np.asarray(rand_matrix(rng, 3, 10))
        qs = big[:, 2:6]  # a strided view: passed with its row pitch, no copy
        got = fka.forward(qs, np.asarray(k)[:, :4], np.asarray(v)[:, :3])
        want, _ = literal_attention(qs.tolist(), np.asarray(k)[:, :4].tolist(), np.asarray(v)[:, :3].tolist())
        check("numpy strided view", max_diff(got.tolist(), want) <= 1e-12)

    # Error returns: shapes the binding sees, NaN bandwidth and a bad kv_head_count from the library, and a NULL
    # pointer and a zero head_dim through the raw export.
    try:
        fka.forward([[1.0, 2.0]], [[1.0, 2.0, 3.0]], [[1.0]])
        check("binding shape check raised", False)
    except ValueError as e:
        check("binding shape check", "key" in str(e), str(e))
    try:
        fka.forward_multihead([[1.0] * 6], [[1.0] * 6], [[1.0] * 4], heads=3, kv_heads=2)
        check("kv_heads error raised", False)
    except fka.FkaError as e:
        check("kv_heads error", e.status == fka.FKA_ERR_SHAPE and "divide" in e.message, str(e))
    try:
        fka.forward([[1.0]], [[1.0]], [[1.0]], kernel="gaussian", bandwidth=float("nan"))
        check("NaN bandwidth raised", False)
    except fka.FkaError as e:
        check("NaN bandwidth", e.status == fka.FKA_ERR_ARGUMENT and "bandwidth" in e.message, str(e))
    status = fka.call_raw("fka_attention_forward_f64", 2, 2, 2, 2, None, 0, None, 0, None, 0, None, 0, None, None)
    check("NULL query", status == fka.FKA_ERR_NULL_POINTER and "query" in fka.last_error_message(),
          "%d %s" % (status, fka.last_error_message()))

    status = fka.call_raw("fka_attention_forward_f32", 1, 1, 0, 1, None, 0, None, 0, None, 0, None, 0, None, None)
    check("head_dim 0", status == fka.FKA_ERR_SHAPE and "head_dim" in fka.last_error_message(), fka.last_error_message())

    # Nadaraya-Watson (MATH.md section 6): X = (0, 1, 2), Y = (0, 1, 4), h = 1 at x = 1, then random data with
    # per-dimension bandwidths and log-weights against a literal weighted average.
    g, diag = fka.nw_predict([[1.0]], [[0.0], [1.0], [2.0]], [[0.0], [1.0], [4.0]], bandwidth=1.0, return_diagnostics=True)
    check("MATH 6 NW", abs(g[0][0] - 1.548137) < 1e-6 and abs(diag["log_sum_exp"][0] - 0.794377) < 1e-6
          and abs(diag["effective_sample_size"][0] - 2.821613) < 1e-6 and abs(diag["local_variance"][0][0] - 2.440232) < 1e-6,
          "%s %s" % (g, diag))
    check("MATH 6 CV(1)", abs(fka.nw_cross_validation([[0.0], [1.0], [2.0]], [[0.0], [1.0], [4.0]], 1.0) - 4.507299) < 1e-6)
    xq, xs, ys = rand_matrix(rng, 4, 3), rand_matrix(rng, 9, 3), rand_matrix(rng, 9, 2)
    h, logw = [0.6, 1.1, 0.8], [rng.uniform(-1, 1) for _ in range(9)]
    got = fka.nw_predict(xq, xs, ys, bandwidth=h, sample_log_weights=logw)
    want = []
    for x in xq:
        w = [math.exp(lw - sum((a - b) ** 2 / (2 * hk ** 2) for a, b, hk in zip(x, s, h))) for s, lw in zip(xs, logw)]
        want.append([sum(wj * y[c] for wj, y in zip(w, ys)) / sum(w) for c in range(2)])
    check("nw_predict per-dimension, weighted", max_diff(got, want) <= 1e-12, "diff %g" % max_diff(got, want))
    hs, cv = fka.nw_select_bandwidth(xs, ys)
    check("nw_select_bandwidth", hs[0] > 0 and abs(cv - fka.nw_cross_validation(xs, ys, hs)) <= 1e-12 * max(cv, 1.0),
          "%s %s" % (hs, cv))
    try:
        fka.nw_predict([[1.0]], [[0.0]], [[0.0]], bandwidth=float("nan"))
        check("NW NaN bandwidth raised", False)
    except fka.FkaError as e:
        check("NW NaN bandwidth", e.status == fka.FKA_ERR_ARGUMENT and "bandwidth" in e.message, str(e))

    print("python: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
