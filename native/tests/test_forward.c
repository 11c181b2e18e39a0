/* Every forward export (f32/f64 x single/single_ws/multihead/multihead_ws) against the naive double reference, feature by
 * feature (dot, scale, Gaussian, causal bottom-right, sink, per-head sinks, GQA/MQA, pitches, LSE, empty shapes, threads),
 * then on random cases; plus the hand-worked examples of MATH.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fka_test.h"

static int failures, passes;

static void expect_case(const char *name, const case_t *c, rng_t *rng)
{
    char why[512], desc[512];
    if (run_case(c, rng, why, sizeof why) == 0) {
        passes++;
        return;
    }
    failures++;
    case_describe(c, desc, sizeof desc);
    printf("FAIL %s [%s]: %s\n", name, desc, why);
}

static case_t base(int precision, int variant)
{
    case_t c;
    memset(&c, 0, sizeof c);
    c.precision = precision;
    c.variant = variant;
    c.m = 5; c.n = 7; c.heads = 1; c.kv_heads = 1; c.d = 8; c.dv = 3;
    c.query_pad = c.key_pad = c.value_pad = c.output_pad = -1;
    c.options.struct_size = sizeof(fka_attention_options);
    c.pass_options = 1;
    c.want_lse = 1;
    if (variant == VARIANT_MULTI || variant == VARIANT_MULTI_WS) { c.heads = 2; c.kv_heads = 2; }
    return c;
}

static void feature_cases(int precision, int variant, rng_t *rng)
{
    int multi = variant == VARIANT_MULTI || variant == VARIANT_MULTI_WS;
    case_t c;

    c = base(precision, variant); expect_case("dot, default scale", &c, rng);
    c = base(precision, variant); c.options.scale = NAN; expect_case("dot, NaN scale = default", &c, rng);
    c = base(precision, variant); c.options.scale = 0.3; expect_case("dot, scale 0.3", &c, rng);
    c = base(precision, variant); c.options.kernel = FKA_KERNEL_GAUSSIAN; c.options.bandwidth = 0.8;
    expect_case("gaussian", &c, rng);
    c = base(precision, variant); c.m = 3; c.n = 7; c.options.causal = 1; expect_case("causal m < n", &c, rng);
    c = base(precision, variant); c.m = 6; c.n = 6; c.options.causal = 1; expect_case("causal m = n", &c, rng);
    c = base(precision, variant); c.m = 6; c.n = 2; c.options.causal = 1; expect_case("causal m > n (empty rows)", &c, rng);
    c = base(precision, variant); c.options.kernel = FKA_KERNEL_GAUSSIAN; c.options.bandwidth = 1.3; c.options.causal = 1;
    c.m = 4; c.n = 9; expect_case("gaussian causal", &c, rng);
    c = base(precision, variant); c.options.has_sink_logit = 1; c.options.sink_logit = 0.7; expect_case("sink", &c, rng);
    c = base(precision, variant); c.options.has_sink_logit = 1; c.options.sink_logit = -INFINITY;
    expect_case("sink -inf = none", &c, rng);
    c = base(precision, variant); c.options.has_sink_logit = 1; c.options.sink_logit = 1.5; c.options.causal = 1;
    c.m = 5; c.n = 3; expect_case("sink with empty causal rows", &c, rng);
    c = base(precision, variant); c.query_pad = 3; c.key_pad = 2; c.value_pad = 1; c.output_pad = 4;
    expect_case("pitches", &c, rng);
    c = base(precision, variant); c.want_lse = 0; expect_case("no LSE", &c, rng);
    c = base(precision, variant); c.n = 0; expect_case("n = 0", &c, rng);
    c = base(precision, variant); c.dv = 0; expect_case("dv = 0 (LSE only)", &c, rng);
    c = base(precision, variant); c.m = 0; expect_case("m = 0 (no-op)", &c, rng);
    c = base(precision, variant); c.d = 1; expect_case("d = 1", &c, rng);
    c = base(precision, variant); c.options.max_threads = 4; c.m = 40; c.n = 90; expect_case("4 threads", &c, rng);
    c = base(precision, variant); c.options.max_threads = -1; c.m = 40; c.n = 90; expect_case("all processors", &c, rng);
    c = base(precision, variant); c.pass_options = 0; expect_case("NULL options", &c, rng);
    c = base(precision, variant); c.m = 17; c.n = 300; c.d = 64; c.dv = 64; c.options.causal = 1;
    expect_case("n = 300, d = dv = 64, causal", &c, rng);
    c = base(precision, variant); c.m = 9; c.n = 130; c.d = 40; c.options.kernel = FKA_KERNEL_GAUSSIAN;
    c.options.bandwidth = 2.0; expect_case("gaussian n = 130, d = 40", &c, rng);
    if (variant == VARIANT_SINGLE_WS || variant == VARIANT_MULTI_WS) {
        c = base(precision, variant); c.workspace_extra = 1000; c.workspace_misalign = 3;
        expect_case("misaligned, larger workspace", &c, rng);
    }
    if (multi) {
        c = base(precision, variant); c.heads = 4; c.kv_heads = 2; expect_case("GQA 4/2", &c, rng);
        c = base(precision, variant); c.heads = 6; c.kv_heads = 1; expect_case("MQA 6/1", &c, rng);
        c = base(precision, variant); c.heads = 3; c.kv_heads = 3; c.use_head_sinks = 1;
        c.head_sinks[0] = 0.5; c.head_sinks[1] = -INFINITY; c.head_sinks[2] = -1.25;
        expect_case("per-head sinks", &c, rng);
        c = base(precision, variant); c.heads = 4; c.kv_heads = 2; c.options.causal = 1; c.m = 3; c.n = 8;
        c.query_pad = 1; c.key_pad = 5; c.value_pad = 2; c.output_pad = 3; c.options.kernel = FKA_KERNEL_GAUSSIAN;
        c.options.bandwidth = 0.9; c.use_head_sinks = 1;
        for (int h = 0; h < 4; h++) c.head_sinks[h] = 0.25 * h;
        expect_case("GQA gaussian causal pitched with head sinks", &c, rng);
    }
    for (int r = 0; r < 150; r++) {
        c = random_case(rng, precision, variant);
        expect_case("random", &c, rng);
    }
}

/* MATH.md section 1 and 3 hand-worked examples, through the plain single-head f64 and f32 exports. */
static void literal_examples(void)
{
    double q[2] = { 1, 0 }, k[4] = { 1, 0, 0, 1 }, v[4] = { 1, 0, 0, 1 }, o[2], lse;
    fka_attention_options opt = { sizeof(fka_attention_options) };
    opt.scale = 1;
    fka_status status = fka_attention_forward_f64(1, 2, 2, 2, q, 0, k, 0, v, 0, o, 0, &lse, &opt);
    if (status != FKA_OK || fabs(o[0] - 0.731059) > 1e-6 || fabs(o[1] - 0.268941) > 1e-6 || fabs(lse - 1.313262) > 1e-6) {
        printf("FAIL MATH 1 example: status %d O = (%f, %f) LSE = %f\n", status, o[0], o[1], lse);
        failures++;
    } else passes++;

    float qs[1] = { 0 }, ks[2] = { 0, 0 }, vs[2] = { 1, 3 }, os[1], lses;
    fka_attention_options sink = { sizeof(fka_attention_options) };
    sink.has_sink_logit = 1;
    sink.sink_logit = 0;
    status = fka_attention_forward_f32(1, 2, 1, 1, qs, 0, ks, 0, vs, 0, os, 0, &lses, &sink);
    if (status != FKA_OK || fabs(os[0] - 1.333333) > 1e-6 || fabs(lses - 1.098612) > 1e-6) {
        printf("FAIL MATH 3 sink example: status %d O = %f LSE = %f\n", status, os[0], lses);
        failures++;
    } else passes++;

    /* NULL value/output with dv = 0, NULL key/value with n = 0. */
    double lse2[3];
    status = fka_attention_forward_f64(3, 2, 2, 0, k, 0, k, 0, NULL, 0, NULL, 0, lse2, NULL);
    if (status != FKA_OK) { printf("FAIL dv = 0 with NULL value/output: %s\n", fka_last_error_message()); failures++; }
    else passes++;
    double out3[6] = { 9, 9, 9, 9, 9, 9 };
    status = fka_attention_forward_f64(3, 0, 2, 2, k, 0, NULL, 0, NULL, 0, out3, 0, lse2, NULL);
    if (status != FKA_OK || out3[0] != 0 || out3[5] != 0 || lse2[0] != -INFINITY) {
        printf("FAIL n = 0 with NULL key/value: status %d %s\n", status, fka_last_error_message());
        failures++;
    } else passes++;
}

static void workspace_sizes(void)
{
    int64_t a = 0, b = 0, g = 0;
    fka_attention_options gauss = { sizeof(fka_attention_options), FKA_KERNEL_GAUSSIAN };
    gauss.bandwidth = 1;
    if (fka_workspace_size_f32(64, 64, 100, 1, 1, NULL, &a) != FKA_OK || a <= 63
        || fka_workspace_size_f64(64, 64, 100, 1, 1, NULL, &b) != FKA_OK || b < a
        || fka_workspace_size_f32(64, 64, 100, 8, 2, &gauss, &g) != FKA_OK || g <= a) {
        printf("FAIL workspace sizes: f32 %lld, f64 %lld, gaussian GQA %lld (%s)\n", (long long)a, (long long)b,
            (long long)g, fka_last_error_message());
        failures++;
    } else passes++;
}

int main(void)
{
    rng_t rng = { UINT64_C(0x9E3779B97F4A7C15) };
    printf("fka %s, ISA path %d\n", fka_version_string(), fka_active_isa());
    const char *expect_isa = getenv("FKA_EXPECT_ISA"); /* set by CTest for the forced and extra-build runs */
    if (expect_isa && *expect_isa) {
        if (fka_active_isa() != atoi(expect_isa)) {
            printf("FAIL active ISA %d, expected %s\n", fka_active_isa(), expect_isa);
            failures++;
        } else passes++;
    }
    literal_examples();
    workspace_sizes();
    for (int precision = 32; precision <= 64; precision += 32) {
        for (int variant = 0; variant < VARIANT_COUNT; variant++) {
            int before = failures;
            feature_cases(precision, variant, &rng);
            printf("f%d %-13s %s\n", precision, variant_name(variant), failures == before ? "ok" : "FAILED");
        }
    }
    printf("forward: %d checks passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
