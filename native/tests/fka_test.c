#include "fka_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTPUT_SENTINEL 12345.0
#define LSE_CANARY (-777.0)

uint64_t rng_next(rng_t *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * UINT64_C(2685821657736338717);
}

double rng_uniform(rng_t *rng, double lo, double hi)
{
    return lo + (hi - lo) * (double)(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t rng_int(rng_t *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo;
    return lo + (int64_t)(rng_next(rng) % (uint64_t)(hi - lo + 1));
}

const char *variant_name(int variant)
{
    static const char *names[] = { "single", "single_ws", "multihead", "multihead_ws" };
    return variant >= 0 && variant < VARIANT_COUNT ? names[variant] : "?";
}

void reference_attention(int64_t m, int64_t n, int64_t heads, int64_t kv_heads, int64_t d, int64_t dv,
    const double *q, int64_t qp, const double *k, int64_t kp, const double *v, int64_t vp,
    double *o, int64_t op, double *lse, const double *sinks, int kernel, double scale, double bandwidth, int causal)
{
    int64_t group = heads / kv_heads;
    double *logits = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!(scale > 0)) scale = 1.0 / sqrt((double)d);
    for (int64_t h = 0; h < heads; h++) {
        int64_t g = h / group;
        double sink = sinks ? sinks[h] : -INFINITY;
        for (int64_t i = 0; i < m; i++) {
            const double *qi = q + i * qp + h * d;
            int64_t last = causal ? i + (n - m) : n - 1; /* bottom-right aligned: j <= i + (n - m) */
            if (last > n - 1) last = n - 1;
            double max = sink;
            for (int64_t j = 0; j <= last; j++) {
                const double *kj = k + j * kp + g * d;
                double s = 0;
                if (kernel == FKA_KERNEL_GAUSSIAN) {
                    for (int64_t c = 0; c < d; c++) s += (qi[c] - kj[c]) * (qi[c] - kj[c]);
                    s = -s / (2 * bandwidth * bandwidth);
                } else {
                    for (int64_t c = 0; c < d; c++) s += qi[c] * kj[c];
                    s *= scale;
                }
                logits[j] = s;
                if (s > max) max = s;
            }
            double *oi = o + i * op + h * dv;
            if (max == -INFINITY) {
                for (int64_t c = 0; c < dv; c++) oi[c] = 0;
                if (lse) lse[h * m + i] = -INFINITY;
                continue;
            }
            double sum = sink == -INFINITY ? 0 : exp(sink - max);
            for (int64_t c = 0; c < dv; c++) oi[c] = 0;
            for (int64_t j = 0; j <= last; j++) {
                double w = exp(logits[j] - max);
                sum += w;
                const double *vj = v + j * vp + g * dv;
                for (int64_t c = 0; c < dv; c++) oi[c] += w * vj[c];
            }
            for (int64_t c = 0; c < dv; c++) oi[c] /= sum;
            if (lse) lse[h * m + i] = max + log(sum);
        }
    }
    free(logits);
}

case_t random_case(rng_t *rng, int precision, int variant)
{
    case_t c;
    memset(&c, 0, sizeof c);
    c.precision = precision;
    c.variant = variant;
    c.m = rng_int(rng, 0, 7);
    c.n = rng_int(rng, 0, 9);
    if (rng_int(rng, 0, 9) == 0) c.n = rng_int(rng, 60, 200); /* more than one key tile */
    if (variant == VARIANT_MULTI || variant == VARIANT_MULTI_WS) {
        static const int64_t shapes[][2] = { { 1, 1 }, { 2, 2 }, { 2, 1 }, { 4, 2 }, { 4, 1 }, { 3, 3 }, { 6, 2 }, { 8, 4 } };
        int s = (int)rng_int(rng, 0, 7);
        c.heads = shapes[s][0];
        c.kv_heads = shapes[s][1];
    } else {
        c.heads = c.kv_heads = 1;
    }
    c.d = rng_int(rng, 1, 9);
    if (rng_int(rng, 0, 7) == 0) c.d = rng_int(rng, 16, 70);
    c.dv = rng_int(rng, 0, 6);
    c.query_pad = rng_int(rng, -1, 3);
    c.key_pad = rng_int(rng, -1, 3);
    c.value_pad = rng_int(rng, -1, 3);
    c.output_pad = rng_int(rng, -1, 3);
    c.options.struct_size = sizeof(fka_attention_options);
    c.options.kernel = (int32_t)rng_int(rng, 0, 1);
    if (c.options.kernel == FKA_KERNEL_GAUSSIAN) {
        c.options.bandwidth = rng_uniform(rng, 0.5, 2.0);
    } else {
        int how = (int)rng_int(rng, 0, 2);
        c.options.scale = how == 0 ? 0.0 : how == 1 ? NAN : rng_uniform(rng, 0.1, 1.5);
    }
    c.options.causal = (int32_t)rng_int(rng, 0, 1);
    static const int32_t threads[] = { 0, 1, 2, 4, -1 };
    c.options.max_threads = threads[rng_int(rng, 0, 4)];
    int sink = (int)rng_int(rng, 0, 3);
    if (sink == 1) {
        c.options.has_sink_logit = 1;
        c.options.sink_logit = rng_int(rng, 0, 4) == 0 ? -INFINITY : rng_uniform(rng, -2, 2);
    } else if (sink == 2 && (variant == VARIANT_MULTI || variant == VARIANT_MULTI_WS)) {
        c.use_head_sinks = 1;
        for (int h = 0; h < c.heads; h++) c.head_sinks[h] = rng_int(rng, 0, 3) == 0 ? -INFINITY : rng_uniform(rng, -2, 2);
    }
    c.pass_options = 1;
    c.want_lse = (int)rng_int(rng, 0, 1);
    c.workspace_extra = rng_int(rng, 0, 1) ? 0 : rng_int(rng, 1, 100);
    c.workspace_misalign = (int)rng_int(rng, 0, 1) * (int)rng_int(rng, 1, 7);
    return c;
}

static int64_t pitch_of(int64_t width, int64_t pad) { return pad < 0 ? width : width + pad; }
static int64_t pitch_arg(int64_t width, int64_t pad) { return pad < 0 ? 0 : width + pad; }

static void *alloc_matrix(int precision, int64_t rows, int64_t pitch, int64_t width, rng_t *rng, double fill_pad,
    int fill_data, size_t *len)
{
    size_t count = (size_t)(rows * pitch);
    if (count == 0) count = 1;
    *len = count;
    size_t size = precision == 32 ? sizeof(float) : sizeof(double);
    void *buffer = malloc(count * size);
    for (size_t e = 0; e < count; e++) {
        int64_t col = pitch > 0 ? (int64_t)(e % (size_t)pitch) : 0;
        double x = col < width && rows > 0 && fill_data ? rng_uniform(rng, -1, 1) : fill_pad;
        if (col < width && !fill_data) x = fill_pad;
        if (precision == 32) ((float *)buffer)[e] = (float)x;
        else ((double *)buffer)[e] = x;
    }
    return buffer;
}

int case_prepare(const case_t *c, rng_t *rng, prepared_t *p)
{
    memset(p, 0, sizeof *p);
    int64_t qw = c->heads * c->d, kw = c->kv_heads * c->d, vw = c->kv_heads * c->dv, ow = c->heads * c->dv;
    p->query = alloc_matrix(c->precision, c->m, pitch_of(qw, c->query_pad), qw, rng, NAN, 1, &p->query_len);
    p->key = alloc_matrix(c->precision, c->n, pitch_of(kw, c->key_pad), kw, rng, NAN, 1, &p->key_len);
    p->value = alloc_matrix(c->precision, c->n, pitch_of(vw, c->value_pad), vw, rng, NAN, 1, &p->value_len);
    p->output = alloc_matrix(c->precision, c->m, pitch_of(ow, c->output_pad), ow, rng, OUTPUT_SENTINEL, 0, &p->output_len);
    p->lse_len = (size_t)(c->heads * c->m) + 1; /* one canary past the end */
    size_t size = c->precision == 32 ? sizeof(float) : sizeof(double);
    p->lse = malloc(p->lse_len * size);
    for (size_t e = 0; e < p->lse_len; e++) {
        if (c->precision == 32) ((float *)p->lse)[e] = (float)LSE_CANARY;
        else ((double *)p->lse)[e] = LSE_CANARY;
    }
    if (c->use_head_sinks) {
        p->sinks = malloc((size_t)c->heads * size);
        for (int64_t h = 0; h < c->heads; h++) {
            if (c->precision == 32) ((float *)p->sinks)[h] = (float)c->head_sinks[h];
            else ((double *)p->sinks)[h] = c->head_sinks[h];
        }
    }
    p->options_copy = c->options;

    call_t *call = &p->call;
    call->precision = c->precision;
    call->variant = c->variant;
    call->m = c->m; call->n = c->n; call->heads = c->heads; call->kv_heads = c->kv_heads; call->d = c->d; call->dv = c->dv;
    call->query = p->query; call->key = p->key; call->value = p->value; call->output = p->output;
    call->lse = c->want_lse ? p->lse : NULL;
    call->sinks = p->sinks;
    call->query_pitch = pitch_arg(qw, c->query_pad);
    call->key_pitch = pitch_arg(kw, c->key_pad);
    call->value_pitch = pitch_arg(vw, c->value_pad);
    call->output_pitch = pitch_arg(ow, c->output_pad);
    call->options = c->pass_options ? &p->options_copy : NULL;
    if (c->variant == VARIANT_SINGLE_WS || c->variant == VARIANT_MULTI_WS) {
        int64_t required = 0;
        fka_status status = c->precision == 32
            ? fka_workspace_size_f32(c->d, c->dv, c->n, c->heads, c->kv_heads, call->options, &required)
            : fka_workspace_size_f64(c->d, c->dv, c->n, c->heads, c->kv_heads, call->options, &required);
        if (status != FKA_OK) return status;
        p->workspace_required = required;
        int64_t bytes = required + c->workspace_extra;
        p->workspace_block = malloc((size_t)(bytes + c->workspace_misalign));
        call->workspace = (char *)p->workspace_block + c->workspace_misalign;
        call->workspace_bytes = bytes;
    }
    return 0;
}

void case_free(prepared_t *p)
{
    free(p->query); free(p->key); free(p->value); free(p->output); free(p->lse); free(p->sinks); free(p->workspace_block);
    memset(p, 0, sizeof *p);
}

fka_status invoke(const call_t *a)
{
    if (a->precision == 32) {
        switch (a->variant) {
        case VARIANT_SINGLE:
            return fka_attention_forward_f32(a->m, a->n, a->d, a->dv, a->query, a->query_pitch, a->key, a->key_pitch,
                a->value, a->value_pitch, a->output, a->output_pitch, a->lse, a->options);
        case VARIANT_SINGLE_WS:
            return fka_attention_forward_ws_f32(a->m, a->n, a->d, a->dv, a->query, a->query_pitch, a->key, a->key_pitch,
                a->value, a->value_pitch, a->output, a->output_pitch, a->lse, a->options, a->workspace, a->workspace_bytes);
        case VARIANT_MULTI:
            return fka_attention_forward_multihead_f32(a->m, a->n, a->heads, a->kv_heads, a->d, a->dv, a->query,
                a->query_pitch, a->key, a->key_pitch, a->value, a->value_pitch, a->output, a->output_pitch, a->lse,
                a->sinks, a->options);
        default:
            return fka_attention_forward_multihead_ws_f32(a->m, a->n, a->heads, a->kv_heads, a->d, a->dv, a->query,
                a->query_pitch, a->key, a->key_pitch, a->value, a->value_pitch, a->output, a->output_pitch, a->lse,
                a->sinks, a->options, a->workspace, a->workspace_bytes);
        }
    }
    switch (a->variant) {
    case VARIANT_SINGLE:
        return fka_attention_forward_f64(a->m, a->n, a->d, a->dv, a->query, a->query_pitch, a->key, a->key_pitch,
            a->value, a->value_pitch, a->output, a->output_pitch, a->lse, a->options);
    case VARIANT_SINGLE_WS:
        return fka_attention_forward_ws_f64(a->m, a->n, a->d, a->dv, a->query, a->query_pitch, a->key, a->key_pitch,
            a->value, a->value_pitch, a->output, a->output_pitch, a->lse, a->options, a->workspace, a->workspace_bytes);
    case VARIANT_MULTI:
        return fka_attention_forward_multihead_f64(a->m, a->n, a->heads, a->kv_heads, a->d, a->dv, a->query,
            a->query_pitch, a->key, a->key_pitch, a->value, a->value_pitch, a->output, a->output_pitch, a->lse,
            a->sinks, a->options);
    default:
        return fka_attention_forward_multihead_ws_f64(a->m, a->n, a->heads, a->kv_heads, a->d, a->dv, a->query,
            a->query_pitch, a->key, a->key_pitch, a->value, a->value_pitch, a->output, a->output_pitch, a->lse,
            a->sinks, a->options, a->workspace, a->workspace_bytes);
    }
}

static double *widen(int precision, const void *buffer, size_t len)
{
    double *out = malloc(len * sizeof(double));
    for (size_t e = 0; e < len; e++)
        out[e] = precision == 32 ? (double)((const float *)buffer)[e] : ((const double *)buffer)[e];
    return out;
}

void case_describe(const case_t *c, char *buffer, size_t length)
{
    snprintf(buffer, length,
        "f%d %s m=%lld n=%lld H=%lld Hkv=%lld d=%lld dv=%lld pads=(%lld,%lld,%lld,%lld) kernel=%d scale=%g h=%g causal=%d "
        "sink=%d:%g head_sinks=%d lse=%d threads=%d",
        c->precision, variant_name(c->variant), (long long)c->m, (long long)c->n, (long long)c->heads,
        (long long)c->kv_heads, (long long)c->d, (long long)c->dv, (long long)c->query_pad, (long long)c->key_pad,
        (long long)c->value_pad, (long long)c->output_pad, c->options.kernel, c->options.scale, c->options.bandwidth,
        c->options.causal, c->options.has_sink_logit, c->options.sink_logit, c->use_head_sinks, c->want_lse,
        c->options.max_threads);
}

int case_check(const case_t *c, const prepared_t *p, char *why, size_t why_len)
{
    int64_t qw = c->heads * c->d, kw = c->kv_heads * c->d, vw = c->kv_heads * c->dv, ow = c->heads * c->dv;
    int64_t qp = pitch_of(qw, c->query_pad), kp = pitch_of(kw, c->key_pad), vp = pitch_of(vw, c->value_pad);
    int64_t op = pitch_of(ow, c->output_pad);
    double *q = widen(c->precision, p->query, p->query_len);
    double *k = widen(c->precision, p->key, p->key_len);
    double *v = widen(c->precision, p->value, p->value_len);
    double *o = widen(c->precision, p->output, p->output_len);
    double *lse = widen(c->precision, p->lse, p->lse_len);
    double *ref_o = calloc(p->output_len, sizeof(double));
    double *ref_lse = calloc(p->lse_len, sizeof(double));
    double sinks[FKA_TEST_MAX_HEADS];
    const double *sink_arg = NULL;
    if (c->use_head_sinks) {
        sink_arg = sinks;
        for (int64_t h = 0; h < c->heads; h++)
            sinks[h] = c->precision == 32 ? (double)(float)c->head_sinks[h] : c->head_sinks[h];
    } else if (c->options.has_sink_logit) {
        sink_arg = sinks;
        for (int64_t h = 0; h < c->heads; h++) sinks[h] = c->options.sink_logit;
    }
    reference_attention(c->m, c->n, c->heads, c->kv_heads, c->d, c->dv, q, qp, k, kp, v, vp, ref_o, op, ref_lse,
        sink_arg, c->options.kernel, isnan(c->options.scale) ? 0 : c->options.scale, c->options.bandwidth,
        c->options.causal);

    double tol = c->precision == 32 ? 1e-5 : 1e-12;
    double max_v = 0;
    for (int64_t j = 0; j < c->n; j++)
        for (int64_t col = 0; col < vw; col++)
            if (fabs(v[j * vp + col]) > max_v) max_v = fabs(v[j * vp + col]);
    int failed = 0;
    for (int64_t i = 0; i < c->m && !failed; i++) {
        for (int64_t col = 0; col < op; col++) {
            double got = o[i * op + col];
            if (col >= ow) {
                if (got != OUTPUT_SENTINEL) {
                    snprintf(why, why_len, "output padding overwritten at row %lld col %lld", (long long)i, (long long)col);
                    failed = 1;
                    break;
                }
                continue;
            }
            double want = ref_o[i * op + col];
            if (!(fabs(got - want) <= tol * max_v)) {
                snprintf(why, why_len, "O[%lld,%lld] = %.17g, reference %.17g (max|V| = %g)", (long long)i,
                    (long long)col, got, want, max_v);
                failed = 1;
                break;
            }
        }
    }
    size_t lse_count = (size_t)(c->heads * c->m);
    if (!failed && c->want_lse) {
        for (size_t e = 0; e < lse_count; e++) {
            double got = lse[e], want = ref_lse[e];
            int ok = isinf(want) ? got == want : fabs(got - want) <= tol * fmax(1.0, fabs(want));
            if (!ok) {
                snprintf(why, why_len, "LSE[%zu] = %.17g, reference %.17g", e, got, want);
                failed = 1;
                break;
            }
        }
    }
    if (!failed) {
        for (size_t e = c->want_lse ? lse_count : 0; e < p->lse_len; e++) {
            if (lse[e] != LSE_CANARY) {
                snprintf(why, why_len, "log_sum_exp written at %zu (beyond its length, or when not requested)", e);
                failed = 1;
                break;
            }
        }
    }
    free(q); free(k); free(v); free(o); free(lse); free(ref_o); free(ref_lse);
    return failed;
}

int run_case(const case_t *c, rng_t *rng, char *why, size_t why_len)
{
    prepared_t p;
    int status = case_prepare(c, rng, &p);
    if (status != 0) {
        snprintf(why, why_len, "workspace size query returned %s: %s", fka_status_string(status), fka_last_error_message());
        case_free(&p);
        return 1;
    }
    status = invoke(&p.call);
    int failed = 0;
    if (status != FKA_OK) {
        snprintf(why, why_len, "returned %s: %s", fka_status_string(status), fka_last_error_message());
        failed = 1;
    } else if (fka_last_error_message()[0] != '\0') {
        snprintf(why, why_len, "succeeded but the last-error message is \"%s\"", fka_last_error_message());
        failed = 1;
    } else {
        failed = case_check(c, &p, why, why_len);
    }
    case_free(&p);
    return failed;
}
