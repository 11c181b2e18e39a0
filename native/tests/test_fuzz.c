/* Fuzz-style test: thousands of random argument combinations through every export, valid and invalid.
 * A call gets 0 faults (must return FKA_OK and match the reference), 1 fault (must return exactly that fault's code,
 * leave the outputs untouched and set a message) or 2-3 faults (must return the code of one of them). Faults: NULL
 * pointers, negative or zero sizes, huge sizes and size products that overflow, bad pitches, bad options (struct size,
 * kernel, NaN bandwidth, scale, sinks, thread count, reserved and unknown fields), overlapping outputs, bad per-head
 * sinks, and short, negative or NULL workspaces. The Nadaraya-Watson exports (predict, cross-validation, bandwidth
 * selection, their workspace variants and size queries) get the same treatment: NULL pointers, bad sizes, bandwidth
 * counts and pitches, overflowing sizes and extents, NaN / zero / negative / infinite bandwidths, NaN or +inf
 * log-weights, overlapping outputs, bad workspaces. The process must not crash.
 * Usage: test_fuzz [calls] [seed] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fka_test.h"
#include "fka_test_nw.h"

#define MAX_FAULTS 3
#define CODES 100

static int64_t counts[CODES];
static long calls, ok_calls, error_calls, mismatches, unexpected, nw_calls;

typedef struct { fka_attention_options v1; double future_field; } options_v2;

static int is_multi(int variant) { return variant == VARIANT_MULTI || variant == VARIANT_MULTI_WS; }
static int is_ws(int variant) { return variant == VARIANT_SINGLE_WS || variant == VARIANT_MULTI_WS; }

static int64_t huge(rng_t *rng) { return (int64_t)INT32_MAX + 1 + (int64_t)(rng_next(rng) % (uint64_t)INT64_C(0x3FFFFFFFFFFFFFFF)); }
static int64_t negative(rng_t *rng) { return rng_int(rng, 0, 1) ? -rng_int(rng, 1, 10) : -1 - (int64_t)(rng_next(rng) >> 2); }

/* Applies one random fault that is applicable to this call; returns its status code, or -1 if the chosen one does not
 * apply (the caller draws again). */
static int apply_fault(rng_t *rng, call_t *a, options_v2 *opt, prepared_t *p, int *touches_output)
{
    int multi = is_multi(a->variant), ws = is_ws(a->variant);
    int64_t qw = a->heads * a->d, ow = a->heads * a->dv, vw = a->kv_heads * a->dv;
    switch (rng_int(rng, 0, 33)) {
    case 0: if (a->m == 0) return -1; a->query = NULL; return FKA_ERR_NULL_POINTER;
    case 1: if (a->n == 0) return -1; a->key = NULL; return FKA_ERR_NULL_POINTER;
    case 2: if (a->n == 0 || vw == 0) return -1; a->value = NULL; return FKA_ERR_NULL_POINTER;
    case 3: if (a->m == 0 || ow == 0) return -1; a->output = NULL; return FKA_ERR_NULL_POINTER;
    case 4: a->m = negative(rng); return FKA_ERR_SHAPE;
    case 5: a->n = negative(rng); return FKA_ERR_SHAPE;
    case 6: a->d = rng_int(rng, 0, 1) ? 0 : negative(rng); return FKA_ERR_SHAPE;
    case 7: a->dv = negative(rng); return FKA_ERR_SHAPE;
    case 8: if (!multi) return -1; a->heads = rng_int(rng, 0, 1) ? 0 : negative(rng); return FKA_ERR_SHAPE;
    case 9: if (!multi) return -1; a->kv_heads = rng_int(rng, 0, 1) ? 0 : negative(rng); return FKA_ERR_SHAPE;
    case 10: /* kv_head_count not dividing head_count */
        if (!multi) return -1;
        a->kv_heads = a->heads + rng_int(rng, 1, 5);
        return FKA_ERR_SHAPE;
    case 11: { /* a pitch below its width, or negative */
        int which = (int)rng_int(rng, 0, 3);
        int64_t width = which == 0 ? qw : which == 1 ? a->kv_heads * a->d : which == 2 ? vw : ow;
        int64_t pitch = width >= 2 && rng_int(rng, 0, 1) ? rng_int(rng, 1, width - 1) : negative(rng);
        if (which == 0) a->query_pitch = pitch; else if (which == 1) a->key_pitch = pitch;
        else if (which == 2) a->value_pitch = pitch; else a->output_pitch = pitch;
        return FKA_ERR_SHAPE;
    }
    case 12: a->m = huge(rng); return FKA_ERR_OVERFLOW;
    case 13: a->n = huge(rng); return FKA_ERR_OVERFLOW;
    case 14: a->d = huge(rng); return FKA_ERR_OVERFLOW;
    case 15: a->dv = huge(rng); return FKA_ERR_OVERFLOW;
    case 16: if (!multi) return -1; a->heads = huge(rng); return FKA_ERR_OVERFLOW;
    case 17: { /* head_count * head_dim overflows while each fits */
        if (!multi) return -1;
        a->heads = rng_int(rng, 2, 1 << 20);
        a->kv_heads = 1;
        a->d = (int64_t)INT32_MAX / a->heads + 1 + rng_int(rng, 0, 1000);
        return FKA_ERR_OVERFLOW;
    }
    case 18: { /* a pitch beyond INT32_MAX */
        int64_t pitch = huge(rng);
        switch (rng_int(rng, 0, 3)) {
        case 0: a->query_pitch = pitch; break;
        case 1: a->key_pitch = pitch; break;
        case 2: a->value_pitch = pitch; break;
        default: a->output_pitch = pitch; break;
        }
        return FKA_ERR_OVERFLOW;
    }
    case 19: /* rows * pitch * element size overflows int64 though each fits int32 */
        if (qw < 1 || qw > INT32_MAX - 1000) return -1;
        a->m = INT32_MAX - rng_int(rng, 0, 1000);
        a->query_pitch = INT32_MAX - rng_int(rng, 0, 1000);
        return FKA_ERR_OVERFLOW;
    case 20: opt->v1.struct_size = (uint32_t)rng_int(rng, 0, 47); return FKA_ERR_ARGUMENT;
    case 21: opt->v1.struct_size = (uint32_t)rng_int(rng, 4097, UINT32_MAX); return FKA_ERR_ARGUMENT;
    case 22: opt->v1.kernel = (int32_t)rng_int(rng, 2, 1000) * (rng_int(rng, 0, 1) ? 1 : -1); return FKA_ERR_ARGUMENT;
    case 23: opt->v1.bandwidth = NAN; return FKA_ERR_ARGUMENT;
    case 24: /* Gaussian with a bandwidth that is not finite and positive */
        opt->v1.kernel = FKA_KERNEL_GAUSSIAN; opt->v1.scale = 0;
        opt->v1.bandwidth = rng_int(rng, 0, 2) == 0 ? 0 : rng_int(rng, 0, 1) ? -rng_uniform(rng, 0, 5) : INFINITY;
        return FKA_ERR_ARGUMENT;
    case 25: /* dot with a scale that is not finite and positive */
        opt->v1.kernel = FKA_KERNEL_DOT;
        opt->v1.scale = rng_int(rng, 0, 1) ? -rng_uniform(rng, 0.01, 5) : (rng_int(rng, 0, 1) ? INFINITY : -INFINITY);
        return FKA_ERR_ARGUMENT;
    case 26: opt->v1.kernel = FKA_KERNEL_GAUSSIAN; opt->v1.bandwidth = 1; opt->v1.scale = rng_uniform(rng, 0.1, 2);
        return FKA_ERR_ARGUMENT;
    case 27: if (p->sinks && a->sinks) return -1;
        opt->v1.has_sink_logit = 1; opt->v1.sink_logit = rng_int(rng, 0, 1) ? NAN : INFINITY; return FKA_ERR_ARGUMENT;
    case 28: opt->v1.max_threads = (int32_t)rng_int(rng, INT32_MIN, -2); return FKA_ERR_ARGUMENT;
    case 29: opt->v1.reserved = (int32_t)rng_int(rng, 1, 100); return FKA_ERR_ARGUMENT;
    case 30: opt->v1.struct_size = sizeof(options_v2); opt->future_field = rng_uniform(rng, 1, 2); return FKA_ERR_ARGUMENT;
    case 31: /* an output overlapping an input */
        if (a->m == 0 || ow == 0) return -1;
        a->output = rng_int(rng, 0, 1) || a->n == 0 ? a->query : a->key;
        *touches_output = 1;
        return FKA_ERR_ARGUMENT;
    case 32: /* per-head sinks: a NaN or +inf one, or given together with options->has_sink_logit */
        if (!multi || !p->sinks || a->heads < 1 || a->heads > FKA_TEST_MAX_HEADS) return -1;
        if (rng_int(rng, 0, 1)) {
            int64_t h = rng_int(rng, 0, a->heads - 1);
            double bad = rng_int(rng, 0, 1) ? NAN : INFINITY;
            if (a->precision == 32) ((float *)p->sinks)[h] = (float)bad; else ((double *)p->sinks)[h] = bad;
        } else {
            opt->v1.has_sink_logit = 1; opt->v1.sink_logit = 0;
        }
        return FKA_ERR_ARGUMENT;
    default: /* workspace: too small, negative, or NULL with bytes > 0 */
        if (!ws) return -1;
        switch (rng_int(rng, 0, 2)) {
        case 0: a->workspace_bytes = rng_int(rng, 0, p->workspace_required - 1); return FKA_ERR_WORKSPACE;
        case 1: a->workspace_bytes = negative(rng); return FKA_ERR_WORKSPACE;
        default: a->workspace = NULL; if (a->workspace_bytes == 0) a->workspace_bytes = 1; return FKA_ERR_NULL_POINTER;
        }
    }
}

/* The workspace size query with 0 or 1 fault. */
static void fuzz_workspace_size(rng_t *rng)
{
    int precision = rng_int(rng, 0, 1) ? 32 : 64;
    int64_t d = rng_int(rng, 1, 256), dv = rng_int(rng, 0, 256), n = rng_int(rng, 0, 5000);
    int64_t hkv = rng_int(rng, 1, 4), h = hkv * rng_int(rng, 1, 4);
    options_v2 opt;
    memset(&opt, 0, sizeof opt);
    opt.v1.struct_size = sizeof(fka_attention_options);
    opt.v1.kernel = (int32_t)rng_int(rng, 0, 1);
    opt.v1.bandwidth = 1;
    opt.v1.max_threads = (int32_t)rng_int(rng, -1, 4);
    int64_t bytes = 0, *out = &bytes;
    const fka_attention_options *options = rng_int(rng, 0, 9) ? &opt.v1 : NULL;
    int want = FKA_OK;
    if (rng_int(rng, 0, 1)) {
        switch (rng_int(rng, 0, 11)) {
        case 0: out = NULL; want = FKA_ERR_NULL_POINTER; break;
        case 1: d = rng_int(rng, 0, 1) ? 0 : negative(rng); want = FKA_ERR_SHAPE; break;
        case 2: dv = negative(rng); want = FKA_ERR_SHAPE; break;
        case 3: n = negative(rng); want = FKA_ERR_SHAPE; break;
        case 4: h = rng_int(rng, 0, 1) ? 0 : negative(rng); want = FKA_ERR_SHAPE; break;
        case 5: hkv = h + rng_int(rng, 1, 3); want = FKA_ERR_SHAPE; break;
        case 6: d = huge(rng); want = FKA_ERR_OVERFLOW; break;
        case 7: n = huge(rng); want = FKA_ERR_OVERFLOW; break;
        case 8: opt.v1.kernel = FKA_KERNEL_GAUSSIAN; opt.v1.bandwidth = 1; d = 1000; n = 2000000000; h = hkv = 8;
            options = &opt.v1; want = FKA_ERR_OVERFLOW; break; /* more than 2 GiB */
        case 9: opt.v1.bandwidth = NAN; options = &opt.v1; want = FKA_ERR_ARGUMENT; break;
        case 10: opt.v1.struct_size = (uint32_t)rng_int(rng, 0, 47); options = &opt.v1; want = FKA_ERR_ARGUMENT; break;
        default: opt.v1.max_threads = -7; options = &opt.v1; want = FKA_ERR_ARGUMENT; break;
        }
    }
    fka_status status = precision == 32 ? fka_workspace_size_f32(d, dv, n, h, hkv, options, out)
                                        : fka_workspace_size_f64(d, dv, n, h, hkv, options, out);
    calls++;
    if (status >= 0 && status < CODES) counts[status]++;
    if (status == FKA_OK) ok_calls++; else error_calls++;
    if (status != want || (status == FKA_OK && bytes <= 63) || (status != FKA_OK && fka_last_error_message()[0] == '\0')) {
        unexpected++;
        if (unexpected <= 10)
            printf("UNEXPECTED workspace_size_f%d(%lld, %lld, %lld, %lld, %lld): %s (want %s), bytes %lld: %s\n", precision,
                (long long)d, (long long)dv, (long long)n, (long long)h, (long long)hkv, fka_status_string(status),
                fka_status_string(want), (long long)bytes, fka_last_error_message());
    }
}

static void fuzz_forward(rng_t *rng)
{
    int precision = rng_int(rng, 0, 1) ? 32 : 64;
    int variant = (int)rng_int(rng, 0, VARIANT_COUNT - 1);
    case_t c = random_case(rng, precision, variant);
    prepared_t p;
    if (case_prepare(&c, rng, &p) != 0) {
        unexpected++;
        printf("UNEXPECTED workspace size failure: %s\n", fka_last_error_message());
        case_free(&p);
        return;
    }
    options_v2 opt;
    memset(&opt, 0, sizeof opt);
    opt.v1 = c.options;
    if (c.pass_options) p.call.options = &opt.v1;

    int r = (int)rng_int(rng, 0, 99);
    int fault_count = r < 40 ? 0 : r < 85 ? 1 : (int)rng_int(rng, 2, MAX_FAULTS);
    int codes[MAX_FAULTS], applied = 0, touches_output = 0;
    while (applied < fault_count) {
        int code = apply_fault(rng, &p.call, &opt, &p, &touches_output);
        if (code >= 0) codes[applied++] = code;
        if (code == FKA_ERR_ARGUMENT || code < 0) p.call.options = &opt.v1; /* option faults need the struct passed */
    }

    size_t out_bytes = p.output_len * (precision == 32 ? sizeof(float) : sizeof(double));
    unsigned char *snapshot = malloc(out_bytes);
    memcpy(snapshot, p.output, out_bytes);

    fka_status status = invoke(&p.call);
    calls++;
    if (status >= 0 && status < CODES) counts[status]++;
    if (status == FKA_OK) ok_calls++; else error_calls++;

    char why[512], desc[512];
    int bad = 0;
    if (applied == 0) {
        if (status != FKA_OK) { bad = 1; snprintf(why, sizeof why, "valid call returned %s: %s", fka_status_string(status), fka_last_error_message()); }
        else if (case_check(&c, &p, why, sizeof why)) { bad = 1; mismatches++; }
    } else {
        int matched = 0;
        for (int f = 0; f < applied; f++) matched |= status == codes[f];
        if (applied == 1 && status != codes[0]) matched = 0;
        if (!matched) {
            bad = 1;
            snprintf(why, sizeof why, "%d fault(s), first wants %s, got %s: %s", applied, fka_status_string(codes[0]),
                fka_status_string(status), fka_last_error_message());
        } else if (fka_last_error_message()[0] == '\0') {
            bad = 1;
            snprintf(why, sizeof why, "error %s without a message", fka_status_string(status));
        } else if (!touches_output && memcmp(snapshot, p.output, out_bytes) != 0) {
            bad = 1;
            snprintf(why, sizeof why, "output written although the call failed with %s", fka_status_string(status));
        }
    }
    if (bad) {
        unexpected++;
        if (unexpected <= 10) {
            case_describe(&c, desc, sizeof desc);
            printf("UNEXPECTED [%s | m=%lld n=%lld H=%lld Hkv=%lld d=%lld dv=%lld pitches=%lld,%lld,%lld,%lld]: %s\n", desc,
                (long long)p.call.m, (long long)p.call.n, (long long)p.call.heads, (long long)p.call.kv_heads,
                (long long)p.call.d, (long long)p.call.dv, (long long)p.call.query_pitch, (long long)p.call.key_pitch,
                (long long)p.call.value_pitch, (long long)p.call.output_pitch, why);
        }
    }
    free(snapshot);
    case_free(&p);
}

/* ---- Nadaraya-Watson ------------------------------------------------------------------------------------------------ */

/* Applies one random fault to a Nadaraya-Watson call; returns its status code, or -1 if it does not apply. */
static int apply_nw_fault(rng_t *rng, nw_call_t *a, nw_prepared_t *p)
{
    int predict = a->kind == NW_PREDICT || a->kind == NW_PREDICT_WS;
    int cv = a->kind == NW_CV || a->kind == NW_CV_WS, select = a->kind == NW_SELECT;
    int ws = a->kind == NW_PREDICT_WS || a->kind == NW_CV_WS;
    switch (rng_int(rng, 0, 21)) {
    case 0: if (!predict || a->m <= 0) return -1; a->queries = NULL; return FKA_ERR_NULL_POINTER;
    case 1: if (a->n <= 0 || a->d <= 0) return -1; a->samples = NULL; return FKA_ERR_NULL_POINTER;
    case 2: if (a->n <= 0 || a->p <= 0) return -1; a->responses = NULL; return FKA_ERR_NULL_POINTER;
    case 3: if (!predict || a->m <= 0 || a->p <= 0) return -1; a->output = NULL; return FKA_ERR_NULL_POINTER;
    case 4: if (a->bandwidth_count < 1) return -1; a->bandwidths = NULL; return FKA_ERR_NULL_POINTER;
    case 5: if (!cv) return -1; a->score = NULL; return FKA_ERR_NULL_POINTER;
    case 6: /* a negative size, or too few samples */
        switch (rng_int(rng, 0, 3)) {
        case 0: if (!predict) return -1; a->m = negative(rng); return FKA_ERR_SHAPE;
        case 1: a->n = cv ? rng_int(rng, -5, 0) : select ? rng_int(rng, -5, 1) : negative(rng); return FKA_ERR_SHAPE;
        case 2: a->d = rng_int(rng, 0, 1) ? 0 : negative(rng); return FKA_ERR_SHAPE;
        default: a->p = rng_int(rng, 0, 1) ? 0 : negative(rng); return FKA_ERR_SHAPE;
        }
    case 7: { /* bandwidth_count neither 1 nor d */
        int64_t count;
        do count = rng_int(rng, 0, 1) ? rng_int(rng, -3, a->d + 5) : negative(rng);
        while (count == 1 || count == a->d);
        a->bandwidth_count = count;
        return FKA_ERR_SHAPE;
    }
    case 8: { /* a pitch below its width, or negative */
        int which = (int)rng_int(rng, 0, 3);
        if (!predict && (which == 0 || which == 3)) return -1;
        int64_t width = which == 0 || which == 1 ? a->d : a->p;
        int64_t pitch = width >= 2 && rng_int(rng, 0, 1) ? rng_int(rng, 1, width - 1) : negative(rng);
        if (which == 0) a->queries_pitch = pitch; else if (which == 1) a->samples_pitch = pitch;
        else if (which == 2) a->responses_pitch = pitch; else a->output_pitch = pitch;
        return FKA_ERR_SHAPE;
    }
    case 9: /* local_variance with a bad pitch */
        if (!predict || a->p < 2) return -1;
        a->variance = p->variance;
        a->variance_pitch = rng_int(rng, 1, a->p - 1);
        return FKA_ERR_SHAPE;
    case 10: /* a size beyond INT32_MAX */
        switch (rng_int(rng, 0, 3)) {
        case 0: if (!predict) return -1; a->m = huge(rng); return FKA_ERR_OVERFLOW;
        case 1: a->n = huge(rng); return FKA_ERR_OVERFLOW;
        case 2: a->d = huge(rng); return FKA_ERR_OVERFLOW;
        default: a->p = huge(rng); return FKA_ERR_OVERFLOW;
        }
    case 11: { /* a pitch beyond INT32_MAX */
        int which = (int)rng_int(rng, 0, 3);
        if (!predict && (which == 0 || which == 3)) return -1;
        int64_t pitch = huge(rng);
        if (which == 0) a->queries_pitch = pitch; else if (which == 1) a->samples_pitch = pitch;
        else if (which == 2) a->responses_pitch = pitch; else a->output_pitch = pitch;
        return FKA_ERR_OVERFLOW;
    }
    case 12: /* rows * pitch * element size overflows int64 though each fits int32 */
        if (a->d < 1 || a->d > 1000) return -1;
        if (predict && rng_int(rng, 0, 1)) {
            a->m = INT32_MAX - rng_int(rng, 0, 1000);
            a->queries_pitch = INT32_MAX - rng_int(rng, 0, 1000);
        } else {
            a->n = INT32_MAX - rng_int(rng, 0, 1000);
            a->samples_pitch = INT32_MAX - rng_int(rng, 0, 1000);
        }
        return FKA_ERR_OVERFLOW;
    case 13: { /* a bandwidth that is not finite and positive */
        if (select || a->bandwidths != p->bandwidths) return -1;
        int64_t k = rng_int(rng, 0, (int64_t)p->bandwidths_len - 2); /* within the buffer: bandwidth_count may be faulty */
        static const double bad[] = { NAN, 0.0, -1.0, INFINITY, -INFINITY, -0.0 };
        double value = bad[rng_int(rng, 0, 5)];
        if (a->precision == 32) ((float *)p->bandwidths)[k] = (float)value; else ((double *)p->bandwidths)[k] = value;
        return FKA_ERR_ARGUMENT;
    }
    case 14: { /* a NaN or +inf log-weight */
        /* Only where log-weights are passed already: adding them would change the workspace size of the call. */
        if (!predict || a->log_weights == NULL || a->n <= 0 || a->n > INT32_MAX) return -1;
        int64_t j = rng_int(rng, 0, (int64_t)p->weights_len - 2);
        double value = rng_int(rng, 0, 1) ? NAN : INFINITY;
        if (a->precision == 32) ((float *)p->log_weights)[j] = (float)value; else ((double *)p->log_weights)[j] = value;
        return FKA_ERR_ARGUMENT;
    }
    case 15: /* an output overlapping an input or another output */
        if (predict) {
            if (a->m <= 0 || a->p <= 0) return -1;
            switch (rng_int(rng, 0, 3)) {
            case 0: if (a->d < 1) return -1; a->output = a->queries; break;
            case 1: a->lse = p->output; break;
            case 2: a->ess = p->entropy; a->entropy = p->entropy; break;
            default: if (a->n <= 0) return -1; a->variance = a->responses; a->variance_pitch = a->responses_pitch; break;
            }
        } else if (select) {
            if (a->n <= 0 || a->d <= 0) return -1;
            a->bandwidths = a->samples;
        } else {
            if (a->n <= 0 || a->p <= 0) return -1;
            a->score = (double *)a->responses;
        }
        return FKA_ERR_ARGUMENT;
    default: /* workspace: too small, negative, or NULL with bytes > 0 */
        if (!ws) return -1;
        switch (rng_int(rng, 0, 2)) {
        case 0: a->workspace_bytes = rng_int(rng, 0, p->workspace_required - 1); return FKA_ERR_WORKSPACE;
        case 1: a->workspace_bytes = negative(rng); return FKA_ERR_WORKSPACE;
        default: a->workspace = NULL; if (a->workspace_bytes == 0) a->workspace_bytes = 1; return FKA_ERR_NULL_POINTER;
        }
    }
}

static void fuzz_nw(rng_t *rng)
{
    int precision = rng_int(rng, 0, 1) ? 32 : 64;
    int kind = (int)rng_int(rng, 0, 9);
    kind = kind < 3 ? NW_PREDICT : kind < 5 ? NW_PREDICT_WS : kind < 7 ? NW_CV : kind < 9 ? NW_CV_WS : NW_SELECT;
    nw_case_t c = nw_random_case(rng, precision, kind);
    nw_prepared_t p;
    if (nw_case_prepare(&c, rng, &p) != 0) {
        unexpected++;
        printf("UNEXPECTED nw workspace size failure: %s\n", fka_last_error_message());
        nw_case_free(&p);
        return;
    }
    int r = (int)rng_int(rng, 0, 99);
    int fault_count = r < 40 ? 0 : r < 85 ? 1 : (int)rng_int(rng, 2, MAX_FAULTS);
    int codes[MAX_FAULTS], applied = 0;
    while (applied < fault_count) {
        int code = apply_nw_fault(rng, &p.call, &p);
        if (code >= 0) codes[applied++] = code;
    }
    uint64_t before = nw_output_hash(&p);
    fka_status status = nw_invoke(&p.call);
    calls++;
    nw_calls++;
    if (status >= 0 && status < CODES) counts[status]++;
    if (status == FKA_OK) ok_calls++; else error_calls++;

    char why[512], desc[512];
    int bad = 0;
    if (applied == 0) {
        if (status != FKA_OK) { bad = 1; snprintf(why, sizeof why, "valid call returned %s: %s", fka_status_string(status), fka_last_error_message()); }
        else if (nw_case_check(&c, &p, why, sizeof why)) { bad = 1; mismatches++; }
    } else {
        int matched = 0;
        for (int f = 0; f < applied; f++) matched |= status == codes[f];
        if (applied == 1 && status != codes[0]) matched = 0;
        if (!matched) {
            bad = 1;
            snprintf(why, sizeof why, "%d fault(s), first wants %s, got %s: %s", applied, fka_status_string(codes[0]),
                fka_status_string(status), fka_last_error_message());
        } else if (fka_last_error_message()[0] == '\0') {
            bad = 1;
            snprintf(why, sizeof why, "error %s without a message", fka_status_string(status));
        } else if (nw_output_hash(&p) != before) {
            bad = 1;
            snprintf(why, sizeof why, "an output written although the call failed with %s", fka_status_string(status));
        }
    }
    if (bad) {
        unexpected++;
        if (unexpected <= 10) {
            nw_case_describe(&c, desc, sizeof desc);
            printf("UNEXPECTED [%s | m=%lld n=%lld d=%lld p=%lld count=%lld pitches=%lld,%lld,%lld,%lld]: %s\n", desc,
                (long long)p.call.m, (long long)p.call.n, (long long)p.call.d, (long long)p.call.p,
                (long long)p.call.bandwidth_count, (long long)p.call.queries_pitch, (long long)p.call.samples_pitch,
                (long long)p.call.responses_pitch, (long long)p.call.output_pitch, why);
        }
    }
    nw_case_free(&p);
}

/* The Nadaraya-Watson workspace size queries with 0 or 1 fault. */
static void fuzz_nw_workspace_size(rng_t *rng)
{
    int precision = rng_int(rng, 0, 1) ? 32 : 64, predict = (int)rng_int(rng, 0, 1);
    int64_t m = rng_int(rng, 0, 5000), n = rng_int(rng, 0, 5000), d = rng_int(rng, 1, 64), p = rng_int(rng, 1, 16);
    int64_t count = rng_int(rng, 0, 1) ? 1 : d;
    int32_t flags[4];
    for (int f = 0; f < 4; f++) flags[f] = (int32_t)rng_int(rng, -1, 2);
    int64_t bytes = 0, *out = &bytes;
    int want = FKA_OK;
    if (rng_int(rng, 0, 1)) {
        switch (rng_int(rng, 0, 8)) {
        case 0: out = NULL; want = FKA_ERR_NULL_POINTER; break;
        case 1: if (predict) m = negative(rng); else n = negative(rng); want = FKA_ERR_SHAPE; break;
        case 2: n = negative(rng); want = FKA_ERR_SHAPE; break;
        case 3: d = rng_int(rng, 0, 1) ? 0 : negative(rng); want = FKA_ERR_SHAPE; break;
        case 4: p = rng_int(rng, 0, 1) ? 0 : negative(rng); want = FKA_ERR_SHAPE; break;
        case 5: count = rng_int(rng, 0, 1) ? d + rng_int(rng, 1, 9) : rng_int(rng, -9, 0); want = FKA_ERR_SHAPE; break;
        case 6: if (predict) m = huge(rng); else n = huge(rng); want = FKA_ERR_OVERFLOW; break;
        case 7: d = huge(rng); want = FKA_ERR_OVERFLOW; break;
        default: n = 2000000000; m = 2000000000; d = 1000; p = 1000; count = 1; want = FKA_ERR_OVERFLOW; break; /* > 2 GiB */
        }
    }
    fka_status status;
    if (predict)
        status = precision == 32 ? fka_nw_predict_workspace_size_f32(m, n, d, p, count, flags[0], flags[1], flags[2], flags[3], out)
                                 : fka_nw_predict_workspace_size_f64(m, n, d, p, count, flags[0], flags[1], flags[2], flags[3], out);
    else
        status = precision == 32 ? fka_nw_cross_validation_workspace_size_f32(n, d, p, count, out)
                                 : fka_nw_cross_validation_workspace_size_f64(n, d, p, count, out);
    calls++;
    nw_calls++;
    if (status >= 0 && status < CODES) counts[status]++;
    if (status == FKA_OK) ok_calls++; else error_calls++;
    if (status != want || (status == FKA_OK && bytes <= 63) || (status != FKA_OK && fka_last_error_message()[0] == '\0')) {
        unexpected++;
        if (unexpected <= 10)
            printf("UNEXPECTED nw_%s_workspace_size_f%d(m=%lld, n=%lld, d=%lld, p=%lld, count=%lld): %s (want %s): %s\n",
                predict ? "predict" : "cross_validation", precision, (long long)m, (long long)n, (long long)d, (long long)p,
                (long long)count, fka_status_string(status), fka_status_string(want), fka_last_error_message());
    }
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 20000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : UINT64_C(20240607);
    rng_t rng = { seed | 1 };
    printf("fuzz: %ld calls, seed %llu\n", total, (unsigned long long)seed);
    for (long i = 0; i < total; i++) {
        int64_t r = rng_int(&rng, 0, 11);
        if (r == 0) fuzz_workspace_size(&rng);
        else if (r <= 3) fuzz_nw(&rng);
        else if (r == 4) fuzz_nw_workspace_size(&rng);
        else fuzz_forward(&rng);
    }
    printf("fuzz: %ld calls, %ld returned FKA_OK, %ld returned an error:", calls, ok_calls, error_calls);
    for (int code = 1; code < CODES; code++)
        if (counts[code]) printf(" %s %lld", fka_status_string(code), (long long)counts[code]);
    printf("\nfuzz: %ld of the calls to fka_nw_* (%ld selections outside h0*2^(+-30))\n", nw_calls,
        nw_selection_beyond_range);
    printf("fuzz: %ld reference mismatches, %ld unexpected results, no crash\n", mismatches, unexpected);
    return unexpected == 0 && nw_selection_beyond_range == 0 ? 0 : 1;
}
