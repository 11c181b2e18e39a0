/* Every error code of every export, with the argument named in fka_last_error_message(); the outputs stay untouched on
 * an error; the message is cleared by a successful call; the query functions. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fka_test.h"

static int failures, passes;

static void expect(const char *what, fka_status got, fka_status want, const char *needle)
{
    const char *message = fka_last_error_message();
    int ok = got == want && (want == FKA_OK ? message[0] == '\0' : strstr(message, needle) != NULL);
    if (ok) { passes++; return; }
    failures++;
    printf("FAIL %s: got %s, want %s (need \"%s\" in \"%s\")\n", what, fka_status_string(got), fka_status_string(want),
        needle, message);
}

/* A mutation of a valid call and the status and message fragment it must give. */
typedef struct {
    const char *name;
    fka_status want;
    const char *needle;
    int multi_only, ws_only;
} fault_t;

enum {
    F_NULL_QUERY, F_NULL_KEY, F_NULL_VALUE, F_NULL_OUTPUT, F_NEG_M, F_NEG_N, F_ZERO_D, F_NEG_DV, F_ZERO_H, F_ZERO_HKV,
    F_HKV_NOT_DIVIDING, F_NEG_PITCH, F_SMALL_PITCH, F_SMALL_OUTPUT_PITCH, F_HUGE_M, F_HUGE_D, F_HUGE_WIDTH, F_HUGE_PITCH,
    F_EXTENT_OVERFLOW, F_HUGE_LSE, F_STRUCT_SIZE, F_KERNEL, F_NAN_BANDWIDTH, F_NAN_BANDWIDTH_DOT, F_ZERO_BANDWIDTH,
    F_NEG_SCALE, F_INF_SCALE, F_SCALE_WITH_GAUSSIAN, F_NAN_SINK, F_INF_SINK, F_THREADS, F_RESERVED, F_UNKNOWN_FIELD,
    F_OVERLAP, F_OVERLAP_LSE, F_HEAD_SINK_NAN, F_BOTH_SINKS, F_WS_SMALL, F_WS_NEGATIVE, F_WS_NULL, F_COUNT
};

static const fault_t faults[F_COUNT] = {
    [F_NULL_QUERY] = { "NULL query", FKA_ERR_NULL_POINTER, "query", 0, 0 },
    [F_NULL_KEY] = { "NULL key", FKA_ERR_NULL_POINTER, "key", 0, 0 },
    [F_NULL_VALUE] = { "NULL value", FKA_ERR_NULL_POINTER, "value", 0, 0 },
    [F_NULL_OUTPUT] = { "NULL output", FKA_ERR_NULL_POINTER, "output", 0, 0 },
    [F_NEG_M] = { "query_count < 0", FKA_ERR_SHAPE, "query_count", 0, 0 },
    [F_NEG_N] = { "key_count < 0", FKA_ERR_SHAPE, "key_count", 0, 0 },
    [F_ZERO_D] = { "head_dim = 0", FKA_ERR_SHAPE, "head_dim", 0, 0 },
    [F_NEG_DV] = { "value_dim < 0", FKA_ERR_SHAPE, "value_dim", 0, 0 },
    [F_ZERO_H] = { "head_count = 0", FKA_ERR_SHAPE, "head_count", 1, 0 },
    [F_ZERO_HKV] = { "kv_head_count = 0", FKA_ERR_SHAPE, "kv_head_count", 1, 0 },
    [F_HKV_NOT_DIVIDING] = { "kv_head_count not dividing", FKA_ERR_SHAPE, "does not divide", 1, 0 },
    [F_NEG_PITCH] = { "key_pitch < 0", FKA_ERR_SHAPE, "key_pitch", 0, 0 },
    [F_SMALL_PITCH] = { "query_pitch < width", FKA_ERR_SHAPE, "query_pitch", 0, 0 },
    [F_SMALL_OUTPUT_PITCH] = { "output_pitch < width", FKA_ERR_SHAPE, "output_pitch", 0, 0 },
    [F_HUGE_M] = { "query_count > INT32_MAX", FKA_ERR_OVERFLOW, "query_count", 0, 0 },
    [F_HUGE_D] = { "head_dim = 2^40", FKA_ERR_OVERFLOW, "head_dim", 0, 0 },
    [F_HUGE_WIDTH] = { "head_count * head_dim > INT32_MAX", FKA_ERR_OVERFLOW, "query width", 1, 0 },
    [F_HUGE_PITCH] = { "value_pitch > INT32_MAX", FKA_ERR_OVERFLOW, "value_pitch", 0, 0 },
    [F_EXTENT_OVERFLOW] = { "rows * pitch * size overflows int64", FKA_ERR_OVERFLOW, "query", 0, 0 },
    [F_HUGE_LSE] = { "head_count * query_count > INT32_MAX", FKA_ERR_OVERFLOW, "log_sum_exp", 1, 0 },
    [F_STRUCT_SIZE] = { "struct_size too small", FKA_ERR_ARGUMENT, "struct_size", 0, 0 },
    [F_KERNEL] = { "unknown kernel", FKA_ERR_ARGUMENT, "kernel", 0, 0 },
    [F_NAN_BANDWIDTH] = { "NaN bandwidth (Gaussian)", FKA_ERR_ARGUMENT, "bandwidth", 0, 0 },
    [F_NAN_BANDWIDTH_DOT] = { "NaN bandwidth (dot)", FKA_ERR_ARGUMENT, "bandwidth", 0, 0 },
    [F_ZERO_BANDWIDTH] = { "zero bandwidth (Gaussian)", FKA_ERR_ARGUMENT, "Bandwidth", 0, 0 },
    [F_NEG_SCALE] = { "negative scale", FKA_ERR_ARGUMENT, "Scale", 0, 0 },
    [F_INF_SCALE] = { "infinite scale", FKA_ERR_ARGUMENT, "Scale", 0, 0 },
    [F_SCALE_WITH_GAUSSIAN] = { "scale with the Gaussian kernel", FKA_ERR_ARGUMENT, "Scale", 0, 0 },
    [F_NAN_SINK] = { "NaN sink", FKA_ERR_ARGUMENT, "SinkLogit", 0, 0 },
    [F_INF_SINK] = { "+inf sink", FKA_ERR_ARGUMENT, "SinkLogit", 0, 0 },
    [F_THREADS] = { "max_threads = -2", FKA_ERR_ARGUMENT, "MaxDegreeOfParallelism", 0, 0 },
    [F_RESERVED] = { "reserved != 0", FKA_ERR_ARGUMENT, "reserved", 0, 0 },
    [F_UNKNOWN_FIELD] = { "newer struct with a non-zero unknown field", FKA_ERR_ARGUMENT, "does not know", 0, 0 },
    [F_OVERLAP] = { "output overlaps query", FKA_ERR_ARGUMENT, "overlaps", 0, 0 },
    [F_OVERLAP_LSE] = { "log_sum_exp overlaps output", FKA_ERR_ARGUMENT, "overlaps", 0, 0 },
    [F_HEAD_SINK_NAN] = { "NaN per-head sink", FKA_ERR_ARGUMENT, "sinkLogits", 1, 0 },
    [F_BOTH_SINKS] = { "sink given both ways", FKA_ERR_ARGUMENT, "either", 1, 0 },
    [F_WS_SMALL] = { "workspace too small", FKA_ERR_WORKSPACE, "workspace", 0, 1 },
    [F_WS_NEGATIVE] = { "workspace_bytes < 0", FKA_ERR_WORKSPACE, "workspace_bytes", 0, 1 },
    [F_WS_NULL] = { "NULL workspace with bytes > 0", FKA_ERR_NULL_POINTER, "workspace", 0, 1 },
};

/* A bigger options struct, as a newer header would declare it. */
typedef struct { fka_attention_options v1; double future_field; } options_v2;

static void apply(int fault, call_t *call, options_v2 *opt, prepared_t *p)
{
    switch (fault) {
    case F_NULL_QUERY: call->query = NULL; break;
    case F_NULL_KEY: call->key = NULL; break;
    case F_NULL_VALUE: call->value = NULL; break;
    case F_NULL_OUTPUT: call->output = NULL; break;
    case F_NEG_M: call->m = -1; break;
    case F_NEG_N: call->n = -3; break;
    case F_ZERO_D: call->d = 0; break;
    case F_NEG_DV: call->dv = -2; break;
    case F_ZERO_H: call->heads = 0; break;
    case F_ZERO_HKV: call->kv_heads = 0; break;
    case F_HKV_NOT_DIVIDING: call->kv_heads = 3; break; /* heads = 4 */
    case F_NEG_PITCH: call->key_pitch = -8; break;
    case F_SMALL_PITCH: call->query_pitch = call->heads * call->d - 1; break;
    case F_SMALL_OUTPUT_PITCH: call->output_pitch = 1; break;
    case F_HUGE_M: call->m = (int64_t)INT32_MAX + 1; break;
    case F_HUGE_D: call->d = INT64_C(1) << 40; break;
    case F_HUGE_WIDTH: call->heads = 65536; call->kv_heads = 1; call->d = 65536; break;
    case F_HUGE_PITCH: call->value_pitch = INT64_C(1) << 33; break;
    case F_EXTENT_OVERFLOW: call->m = INT32_MAX; call->query_pitch = INT32_MAX; call->heads = 1; call->kv_heads = 1; break;
    case F_HUGE_LSE: call->heads = 4; call->kv_heads = 1; call->m = INT32_MAX / 2; break;
    case F_STRUCT_SIZE: opt->v1.struct_size = 8; break;
    case F_KERNEL: opt->v1.kernel = 7; break;
    case F_NAN_BANDWIDTH: opt->v1.kernel = FKA_KERNEL_GAUSSIAN; opt->v1.bandwidth = NAN; break;
    case F_NAN_BANDWIDTH_DOT: opt->v1.bandwidth = NAN; break;
    case F_ZERO_BANDWIDTH: opt->v1.kernel = FKA_KERNEL_GAUSSIAN; opt->v1.bandwidth = 0; break;
    case F_NEG_SCALE: opt->v1.scale = -1; break;
    case F_INF_SCALE: opt->v1.scale = INFINITY; break;
    case F_SCALE_WITH_GAUSSIAN: opt->v1.kernel = FKA_KERNEL_GAUSSIAN; opt->v1.bandwidth = 1; opt->v1.scale = 0.5; break;
    case F_NAN_SINK: opt->v1.has_sink_logit = 1; opt->v1.sink_logit = NAN; break;
    case F_INF_SINK: opt->v1.has_sink_logit = 1; opt->v1.sink_logit = INFINITY; break;
    case F_THREADS: opt->v1.max_threads = -2; break;
    case F_RESERVED: opt->v1.reserved = 1; break;
    case F_UNKNOWN_FIELD: opt->v1.struct_size = sizeof(options_v2); opt->future_field = 1.0; break;
    case F_OVERLAP: call->output = call->query; break;
    case F_OVERLAP_LSE: call->lse = call->output; break;
    case F_HEAD_SINK_NAN:
        if (call->precision == 32) ((float *)p->sinks)[1] = NAN; else ((double *)p->sinks)[1] = NAN;
        call->sinks = p->sinks;
        break;
    case F_BOTH_SINKS: call->sinks = p->sinks; opt->v1.has_sink_logit = 1; opt->v1.sink_logit = 0; break;
    case F_WS_SMALL: call->workspace_bytes = p->workspace_required - 1; break;
    case F_WS_NEGATIVE: call->workspace_bytes = -1; break;
    case F_WS_NULL: call->workspace = NULL; break;
    }
}

static void forward_faults(int precision, int variant)
{
    int multi = variant == VARIANT_MULTI || variant == VARIANT_MULTI_WS;
    int ws = variant == VARIANT_SINGLE_WS || variant == VARIANT_MULTI_WS;
    rng_t rng = { 12345u + (uint64_t)variant };
    for (int fault = 0; fault < F_COUNT; fault++) {
        if ((faults[fault].multi_only && !multi) || (faults[fault].ws_only && !ws)) continue;
        case_t c;
        memset(&c, 0, sizeof c);
        c.precision = precision; c.variant = variant;
        c.m = 3; c.n = 5; c.d = 4; c.dv = 2; c.heads = multi ? 4 : 1; c.kv_heads = multi ? 2 : 1;
        c.query_pad = c.key_pad = c.value_pad = c.output_pad = -1;
        c.options.struct_size = sizeof(fka_attention_options);
        c.pass_options = 1; c.want_lse = 1;
        if (multi) { c.use_head_sinks = 1; for (int h = 0; h < c.heads; h++) c.head_sinks[h] = 0.1 * h; }
        prepared_t p;
        if (case_prepare(&c, &rng, &p) != 0) { printf("FAIL prepare\n"); failures++; continue; }
        options_v2 opt;
        memset(&opt, 0, sizeof opt);
        opt.v1 = c.options;
        p.call.options = &opt.v1;
        if (fault != F_HEAD_SINK_NAN && fault != F_BOTH_SINKS) p.call.sinks = NULL;
        apply(fault, &p.call, &opt, &p);

        /* Output untouched on error: fill with a marker first. */
        size_t out_bytes = p.output_len * (precision == 32 ? sizeof(float) : sizeof(double));
        memset(p.output, 0x5A, out_bytes);
        fka_status status = invoke(&p.call);
        char what[160];
        snprintf(what, sizeof what, "f%d %s: %s", precision, variant_name(variant), faults[fault].name);
        expect(what, status, faults[fault].want, faults[fault].needle);
        for (size_t b = 0; b < out_bytes && fault != F_OVERLAP; b++) {
            if (((unsigned char *)p.output)[b] != 0x5A) {
                printf("FAIL %s: output written on error\n", what);
                failures++;
                break;
            }
        }
        /* The same call without the fault succeeds and clears the message. */
        case_free(&p);
    }
    case_t good;
    memset(&good, 0, sizeof good);
    good.precision = precision; good.variant = variant; good.m = 2; good.n = 3; good.d = 2; good.dv = 2;
    good.heads = good.kv_heads = 1; good.query_pad = good.key_pad = good.value_pad = good.output_pad = -1;
    good.options.struct_size = sizeof(fka_attention_options); good.pass_options = 1;
    char why[256];
    rng_t r2 = { 99 };
    if (run_case(&good, &r2, why, sizeof why) != 0) { printf("FAIL clear after success: %s\n", why); failures++; }
    else passes++;
}

static void workspace_size_faults(void)
{
    int64_t bytes = 77;
    fka_attention_options o = { sizeof(fka_attention_options) };
    for (int precision = 32; precision <= 64; precision += 32) {
        fka_status (*ws)(int64_t, int64_t, int64_t, int64_t, int64_t, const fka_attention_options *, int64_t *) =
            precision == 32 ? fka_workspace_size_f32 : fka_workspace_size_f64;
        char name[64];
        snprintf(name, sizeof name, "workspace_size_f%d", precision);
        expect(name, ws(8, 8, 10, 1, 1, &o, &bytes), FKA_OK, "");
        expect(name, ws(8, 8, 10, 1, 1, &o, NULL), FKA_ERR_NULL_POINTER, "bytes");
        expect(name, ws(0, 8, 10, 1, 1, &o, &bytes), FKA_ERR_SHAPE, "head_dim");
        if (bytes != 0) { printf("FAIL %s: *bytes not 0 on error\n", name); failures++; }
        expect(name, ws(8, -1, 10, 1, 1, &o, &bytes), FKA_ERR_SHAPE, "value_dim");
        expect(name, ws(8, 8, -1, 1, 1, &o, &bytes), FKA_ERR_SHAPE, "key_count");
        expect(name, ws(8, 8, 10, 0, 1, &o, &bytes), FKA_ERR_SHAPE, "head_count");
        expect(name, ws(8, 8, 10, 4, 3, &o, &bytes), FKA_ERR_SHAPE, "divide");
        expect(name, ws(INT64_C(1) << 35, 8, 10, 1, 1, &o, &bytes), FKA_ERR_OVERFLOW, "head_dim");
        fka_attention_options g = o;
        g.kernel = FKA_KERNEL_GAUSSIAN; g.bandwidth = 1;
        expect(name, ws(1000, 1000, 1000000, 64, 64, &g, &bytes), FKA_ERR_OVERFLOW, "2 GiB");
        fka_attention_options bad = o;
        bad.bandwidth = NAN;
        expect(name, ws(8, 8, 10, 1, 1, &bad, &bytes), FKA_ERR_ARGUMENT, "bandwidth");
        bad = o; bad.struct_size = 0;
        expect(name, ws(8, 8, 10, 1, 1, &bad, &bytes), FKA_ERR_ARGUMENT, "struct_size");
    }
}

static void queries(void)
{
    if (sizeof(fka_attention_options) != 48 || fka_attention_options_default().struct_size != 48) {
        printf("FAIL sizeof(fka_attention_options) = %zu, expected 48 (version 1)\n", sizeof(fka_attention_options));
        failures++;
    } else passes++;
    uint32_t version = fka_version();
    if ((version >> 16) != FKA_VERSION_MAJOR || ((version >> 8) & 0xFF) != FKA_VERSION_MINOR) {
        printf("FAIL version: library %u.%u.%u, header %d.%d.%d\n", version >> 16, (version >> 8) & 0xFF,
            version & 0xFF, FKA_VERSION_MAJOR, FKA_VERSION_MINOR, FKA_VERSION_PATCH);
        failures++;
    } else passes++;
    int isa = fka_active_isa();
    if (isa < FKA_ISA_SCALAR || isa > FKA_ISA_AVX512) { printf("FAIL active isa %d\n", isa); failures++; } else passes++;
    static const struct { fka_status code; const char *name; } names[] = {
        { FKA_OK, "FKA_OK" }, { FKA_ERR_NULL_POINTER, "FKA_ERR_NULL_POINTER" }, { FKA_ERR_SHAPE, "FKA_ERR_SHAPE" },
        { FKA_ERR_ARGUMENT, "FKA_ERR_ARGUMENT" }, { FKA_ERR_WORKSPACE, "FKA_ERR_WORKSPACE" },
        { FKA_ERR_OVERFLOW, "FKA_ERR_OVERFLOW" }, { FKA_ERR_OUT_OF_MEMORY, "FKA_ERR_OUT_OF_MEMORY" },
        { FKA_ERR_INTERNAL, "FKA_ERR_INTERNAL" }, { 12345, "FKA_ERR_UNKNOWN" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(fka_status_string(names[i].code), names[i].name) != 0) {
            printf("FAIL status string %d: %s\n", names[i].code, fka_status_string(names[i].code));
            failures++;
        } else passes++;
    }
    /* A bigger struct from a newer header whose extra fields are zero is accepted. */
    options_v2 v2;
    memset(&v2, 0, sizeof v2);
    v2.v1.struct_size = sizeof v2;
    int64_t bytes;
    expect("newer struct, zero extra fields", fka_workspace_size_f32(4, 4, 4, 1, 1, &v2.v1, &bytes), FKA_OK, "");
}

int main(void)
{
    printf("fka %s\n", fka_version_string());
    queries();
    workspace_size_faults();
    for (int precision = 32; precision <= 64; precision += 32)
        for (int variant = 0; variant < VARIANT_COUNT; variant++) forward_faults(precision, variant);
    printf("errors: %d checks passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
