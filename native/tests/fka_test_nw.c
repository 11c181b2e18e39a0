#include "fka_test_nw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NW_SENTINEL 12345.0

long nw_selection_beyond_range;
#define NW_CANARY (-777.0)

const char *nw_kind_name(int kind)
{
    static const char *names[] = { "nw_predict", "nw_predict_ws", "nw_cross_validation", "nw_cross_validation_ws",
                                   "nw_select_bandwidth" };
    return kind >= 0 && kind < NW_KIND_COUNT ? names[kind] : "?";
}

/* ---- reference ------------------------------------------------------------------------------------------------------ */

static double bandwidth_of(const double *h, int64_t bandwidth_count, int64_t k) { return h[bandwidth_count > 1 ? k : 0]; }

void nw_reference_predict(int64_t m, int64_t n, int64_t d, int64_t p, const double *q, int64_t qp, const double *x,
    int64_t xp, const double *y, int64_t yp, const double *h, int64_t bandwidth_count, const double *log_weights,
    double *out, int64_t op, double *lse, double *ess, double *entropy, double *variance, int64_t vp)
{
    double *logits = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < m; i++) {
        double max = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++) {
                double u = (q[i * qp + k] - x[j * xp + k]) / bandwidth_of(h, bandwidth_count, k);
                s += u * u;
            }
            s = -0.5 * s + (log_weights ? log_weights[j] : 0.0);
            logits[j] = s;
            if (s > max) max = s;
        }
        double *oi = out + i * op;
        double *vi = variance ? variance + i * vp : NULL;
        if (max == -INFINITY) {
            for (int64_t c = 0; c < p; c++) { oi[c] = 0; if (vi) vi[c] = 0; }
            if (lse) lse[i] = -INFINITY;
            if (ess) ess[i] = 0;
            if (entropy) entropy[i] = 0;
            continue;
        }
        double sum = 0, sum_sq = 0;
        for (int64_t j = 0; j < n; j++) {
            double e = exp(logits[j] - max);
            sum += e;
            sum_sq += e * e;
        }
        double log_sum = max + log(sum);
        for (int64_t c = 0; c < p; c++) {
            double g = 0;
            for (int64_t j = 0; j < n; j++) g += exp(logits[j] - max) / sum * y[j * yp + c];
            oi[c] = g;
            if (vi) {
                double v = 0;
                for (int64_t j = 0; j < n; j++) {
                    double r = y[j * yp + c] - g;
                    v += exp(logits[j] - max) / sum * r * r;
                }
                vi[c] = v;
            }
        }
        if (lse) lse[i] = log_sum;
        if (ess) ess[i] = sum * sum / sum_sq;
        if (entropy) {
            double H = 0;
            for (int64_t j = 0; j < n; j++) {
                double w = exp(logits[j] - max) / sum;
                if (w > 0) H -= w * (logits[j] - log_sum);
            }
            entropy[i] = H;
        }
    }
    free(logits);
}

double nw_reference_cv(int64_t n, int64_t d, int64_t p, const double *x, int64_t xp, const double *y, int64_t yp,
    const double *h, int64_t bandwidth_count)
{
    if (n < 2) return NAN;
    double *logits = malloc(sizeof(double) * (size_t)n);
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double max = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (int64_t k = 0; k < d; k++) {
                double u = (x[i * xp + k] - x[j * xp + k]) / bandwidth_of(h, bandwidth_count, k);
                s += u * u;
            }
            logits[j] = -0.5 * s;
            if (logits[j] > max) max = logits[j];
        }
        double sum = 0;
        for (int64_t j = 0; j < n; j++) if (j != i) sum += exp(logits[j] - max);
        for (int64_t c = 0; c < p; c++) {
            double g = 0;
            for (int64_t j = 0; j < n; j++) if (j != i) g += exp(logits[j] - max) * y[j * yp + c];
            double r = y[i * yp + c] - g / sum;
            total += r * r;
        }
    }
    free(logits);
    return total / (double)n;
}

void nw_normal_reference(int64_t n, int64_t d, const double *x, int64_t xp, int64_t bandwidth_count, double *h)
{
    double rate = pow((double)n, -1.0 / (double)(d + 4)), rms = 0;
    double sigma[NW_MAX_D];
    for (int64_t k = 0; k < d; k++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < n; j++) mean += x[j * xp + k];
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++) var += (x[j * xp + k] - mean) * (x[j * xp + k] - mean);
        sigma[k] = sqrt(var / (double)n);
        rms += sigma[k] * sigma[k];
    }
    rms = sqrt(rms / (double)d);
    for (int64_t k = 0; k < bandwidth_count; k++) {
        double s = bandwidth_count > 1 ? sigma[k] : rms;
        h[k] = s > 0 ? 1.06 * s * rate : 1.0;
    }
}

/* ---- cases ---------------------------------------------------------------------------------------------------------- */

nw_case_t nw_random_case(rng_t *rng, int precision, int kind)
{
    nw_case_t c;
    memset(&c, 0, sizeof c);
    c.precision = precision;
    c.kind = kind;
    c.m = rng_int(rng, 0, 7);
    c.n = rng_int(rng, kind == NW_SELECT ? 2 : kind == NW_CV || kind == NW_CV_WS ? 1 : 0, 12);
    if (rng_int(rng, 0, 9) == 0) c.n = rng_int(rng, 40, kind == NW_SELECT ? 60 : 150);
    c.d = rng_int(rng, 1, kind == NW_SELECT ? 3 : 6);
    if (kind != NW_SELECT && rng_int(rng, 0, 9) == 0) c.d = rng_int(rng, 7, NW_MAX_D);
    c.p = rng_int(rng, 1, 3);
    c.bandwidth_count = rng_int(rng, 0, 1) ? 1 : c.d;
    for (int64_t k = 0; k < c.bandwidth_count; k++) c.bandwidths[k] = rng_uniform(rng, 0.3, 2.0);
    c.query_pad = rng_int(rng, -1, 3);
    c.sample_pad = rng_int(rng, -1, 3);
    c.response_pad = rng_int(rng, -1, 3);
    c.output_pad = rng_int(rng, -1, 3);
    c.variance_pad = rng_int(rng, -1, 3);
    c.weighted = (int)rng_int(rng, 0, 1);
    c.want_lse = (int)rng_int(rng, 0, 1);
    c.want_ess = (int)rng_int(rng, 0, 1);
    c.want_entropy = (int)rng_int(rng, 0, 1);
    c.want_variance = (int)rng_int(rng, 0, 1);
    c.want_score = rng_int(rng, 0, 4) != 0;
    c.workspace_extra = rng_int(rng, 0, 1) ? 0 : rng_int(rng, 1, 100);
    c.workspace_misalign = (int)rng_int(rng, 0, 1) * (int)rng_int(rng, 1, 7);
    return c;
}

static int64_t pitch_of(int64_t width, int64_t pad) { return pad < 0 ? width : width + pad; }
static int64_t pitch_arg(int64_t width, int64_t pad) { return pad < 0 ? 0 : width + pad; }
static size_t element_size(int precision) { return precision == 32 ? sizeof(float) : sizeof(double); }

static void store(int precision, void *buffer, size_t e, double x)
{
    if (precision == 32) ((float *)buffer)[e] = (float)x;
    else ((double *)buffer)[e] = x;
}

static double load(int precision, const void *buffer, size_t e)
{
    return precision == 32 ? (double)((const float *)buffer)[e] : ((const double *)buffer)[e];
}

/* rows x pitch elements (at least 1): padding gets pad, the data columns data(r, c) or pad when data is NULL. */
static void *matrix(int precision, int64_t rows, int64_t width, int64_t pitch, double pad, size_t *len)
{
    size_t count = (size_t)(rows * pitch);
    if (count == 0) count = 1;
    *len = count;
    void *buffer = malloc(count * element_size(precision));
    for (size_t e = 0; e < count; e++) store(precision, buffer, e, pad);
    (void)width;
    return buffer;
}

static void *vector(int precision, int64_t length, double fill, size_t *len)
{
    *len = (size_t)length + 1; /* one canary past the end */
    void *buffer = malloc(*len * element_size(precision));
    for (size_t e = 0; e < *len; e++) store(precision, buffer, e, fill);
    return buffer;
}

int nw_case_prepare(const nw_case_t *c, rng_t *rng, nw_prepared_t *p)
{
    memset(p, 0, sizeof *p);
    int pr = c->precision;
    int predict = c->kind == NW_PREDICT || c->kind == NW_PREDICT_WS;
    int64_t qp = pitch_of(c->d, c->query_pad), xp = pitch_of(c->d, c->sample_pad), yp = pitch_of(c->p, c->response_pad);
    int64_t op = pitch_of(c->p, c->output_pad), vp = pitch_of(c->p, c->variance_pad);
    p->queries = matrix(pr, predict ? c->m : 0, c->d, qp, NAN, &p->queries_len);
    p->samples = matrix(pr, c->n, c->d, xp, NAN, &p->samples_len);
    p->responses = matrix(pr, c->n, c->p, yp, NAN, &p->responses_len);
    for (int64_t i = 0; predict && i < c->m; i++)
        for (int64_t k = 0; k < c->d; k++) store(pr, p->queries, (size_t)(i * qp + k), rng_uniform(rng, -1.2, 1.2));
    for (int64_t j = 0; j < c->n; j++) {
        double x0 = 0;
        for (int64_t k = 0; k < c->d; k++) {
            double x = rng_uniform(rng, -1, 1);
            if (k == 0) x0 = x;
            store(pr, p->samples, (size_t)(j * xp + k), x);
        }
        /* A smooth signal plus noise, so that cross-validation has something to find. */
        for (int64_t col = 0; col < c->p; col++)
            store(pr, p->responses, (size_t)(j * yp + col), sin(3 * x0 + (double)col) + 0.2 * rng_uniform(rng, -1, 1));
    }
    p->bandwidths = vector(pr, c->bandwidth_count, NW_CANARY, &p->bandwidths_len);
    for (int64_t k = 0; k < c->bandwidth_count && c->kind != NW_SELECT; k++) store(pr, p->bandwidths, (size_t)k, c->bandwidths[k]);
    p->log_weights = vector(pr, c->n, NAN, &p->weights_len);
    for (int64_t j = 0; j < c->n; j++)
        store(pr, p->log_weights, (size_t)j, rng_int(rng, 0, 6) == 0 ? -INFINITY : rng_uniform(rng, -2, 1));
    int64_t m = predict ? c->m : 0;
    p->output = matrix(pr, m, c->p, op, NW_SENTINEL, &p->output_len);
    p->variance = matrix(pr, m, c->p, vp, NW_SENTINEL, &p->variance_len);
    p->lse = vector(pr, m, NW_CANARY, &p->vector_len);
    p->ess = vector(pr, m, NW_CANARY, &p->vector_len);
    p->entropy = vector(pr, m, NW_CANARY, &p->vector_len);
    p->score = malloc(2 * sizeof(double));
    p->score[0] = p->score[1] = NW_CANARY;

    nw_call_t *a = &p->call;
    a->precision = pr; a->kind = c->kind;
    a->m = c->m; a->n = c->n; a->d = c->d; a->p = c->p; a->bandwidth_count = c->bandwidth_count;
    a->queries = p->queries; a->samples = p->samples; a->responses = p->responses; a->bandwidths = p->bandwidths;
    a->log_weights = c->weighted ? p->log_weights : NULL;
    a->output = p->output;
    a->lse = c->want_lse ? p->lse : NULL;
    a->ess = c->want_ess ? p->ess : NULL;
    a->entropy = c->want_entropy ? p->entropy : NULL;
    a->variance = c->want_variance ? p->variance : NULL;
    a->queries_pitch = pitch_arg(c->d, c->query_pad);
    a->samples_pitch = pitch_arg(c->d, c->sample_pad);
    a->responses_pitch = pitch_arg(c->p, c->response_pad);
    a->output_pitch = pitch_arg(c->p, c->output_pad);
    a->variance_pitch = pitch_arg(c->p, c->variance_pad);
    a->score = c->kind == NW_SELECT && !c->want_score ? NULL : p->score;
    if (c->kind == NW_PREDICT_WS || c->kind == NW_CV_WS) {
        int64_t required = 0;
        fka_status status;
        if (c->kind == NW_PREDICT_WS) {
            status = pr == 32
                ? fka_nw_predict_workspace_size_f32(c->m, c->n, c->d, c->p, c->bandwidth_count, a->log_weights != NULL,
                      a->ess != NULL, a->entropy != NULL, a->variance != NULL, &required)
                : fka_nw_predict_workspace_size_f64(c->m, c->n, c->d, c->p, c->bandwidth_count, a->log_weights != NULL,
                      a->ess != NULL, a->entropy != NULL, a->variance != NULL, &required);
        } else {
            status = pr == 32 ? fka_nw_cross_validation_workspace_size_f32(c->n, c->d, c->p, c->bandwidth_count, &required)
                              : fka_nw_cross_validation_workspace_size_f64(c->n, c->d, c->p, c->bandwidth_count, &required);
        }
        if (status != FKA_OK) return status;
        p->workspace_required = required;
        int64_t bytes = required + c->workspace_extra;
        p->workspace_block = malloc((size_t)(bytes + c->workspace_misalign));
        a->workspace = (char *)p->workspace_block + c->workspace_misalign;
        a->workspace_bytes = bytes;
    }
    return 0;
}

void nw_case_free(nw_prepared_t *p)
{
    free(p->queries); free(p->samples); free(p->responses); free(p->bandwidths); free(p->log_weights); free(p->output);
    free(p->lse); free(p->ess); free(p->entropy); free(p->variance); free(p->score); free(p->workspace_block);
    memset(p, 0, sizeof *p);
}

fka_status nw_invoke(const nw_call_t *a)
{
    if (a->precision == 32) {
        switch (a->kind) {
        case NW_PREDICT:
            return fka_nw_predict_f32(a->m, a->n, a->d, a->p, a->queries, a->queries_pitch, a->samples, a->samples_pitch,
                a->responses, a->responses_pitch, a->bandwidths, a->bandwidth_count, a->log_weights, a->output,
                a->output_pitch, a->lse, a->ess, a->entropy, a->variance, a->variance_pitch);
        case NW_PREDICT_WS:
            return fka_nw_predict_ws_f32(a->m, a->n, a->d, a->p, a->queries, a->queries_pitch, a->samples, a->samples_pitch,
                a->responses, a->responses_pitch, a->bandwidths, a->bandwidth_count, a->log_weights, a->output,
                a->output_pitch, a->lse, a->ess, a->entropy, a->variance, a->variance_pitch, a->workspace, a->workspace_bytes);
        case NW_CV:
            return fka_nw_cross_validation_f32(a->n, a->d, a->p, a->samples, a->samples_pitch, a->responses,
                a->responses_pitch, a->bandwidths, a->bandwidth_count, a->score);
        case NW_CV_WS:
            return fka_nw_cross_validation_ws_f32(a->n, a->d, a->p, a->samples, a->samples_pitch, a->responses,
                a->responses_pitch, a->bandwidths, a->bandwidth_count, a->score, a->workspace, a->workspace_bytes);
        default:
            return fka_nw_select_bandwidth_f32(a->n, a->d, a->p, a->samples, a->samples_pitch, a->responses,
                a->responses_pitch, a->bandwidths, a->bandwidth_count, a->score);
        }
    }
    switch (a->kind) {
    case NW_PREDICT:
        return fka_nw_predict_f64(a->m, a->n, a->d, a->p, a->queries, a->queries_pitch, a->samples, a->samples_pitch,
            a->responses, a->responses_pitch, a->bandwidths, a->bandwidth_count, a->log_weights, a->output,
            a->output_pitch, a->lse, a->ess, a->entropy, a->variance, a->variance_pitch);
    case NW_PREDICT_WS:
        return fka_nw_predict_ws_f64(a->m, a->n, a->d, a->p, a->queries, a->queries_pitch, a->samples, a->samples_pitch,
            a->responses, a->responses_pitch, a->bandwidths, a->bandwidth_count, a->log_weights, a->output,
            a->output_pitch, a->lse, a->ess, a->entropy, a->variance, a->variance_pitch, a->workspace, a->workspace_bytes);
    case NW_CV:
        return fka_nw_cross_validation_f64(a->n, a->d, a->p, a->samples, a->samples_pitch, a->responses,
            a->responses_pitch, a->bandwidths, a->bandwidth_count, a->score);
    case NW_CV_WS:
        return fka_nw_cross_validation_ws_f64(a->n, a->d, a->p, a->samples, a->samples_pitch, a->responses,
            a->responses_pitch, a->bandwidths, a->bandwidth_count, a->score, a->workspace, a->workspace_bytes);
    default:
        return fka_nw_select_bandwidth_f64(a->n, a->d, a->p, a->samples, a->samples_pitch, a->responses,
            a->responses_pitch, a->bandwidths, a->bandwidth_count, a->score);
    }
}

static uint64_t fnv(uint64_t hash, const void *buffer, size_t bytes)
{
    const unsigned char *b = buffer;
    for (size_t i = 0; i < bytes; i++) hash = (hash ^ b[i]) * UINT64_C(1099511628211);
    return hash;
}

uint64_t nw_output_hash(const nw_prepared_t *p)
{
    size_t size = element_size(p->call.precision);
    uint64_t hash = UINT64_C(14695981039346656037);
    hash = fnv(hash, p->output, p->output_len * size);
    hash = fnv(hash, p->variance, p->variance_len * size);
    hash = fnv(hash, p->lse, p->vector_len * size);
    hash = fnv(hash, p->ess, p->vector_len * size);
    hash = fnv(hash, p->entropy, p->vector_len * size);
    hash = fnv(hash, p->score, 2 * sizeof(double));
    hash = fnv(hash, p->bandwidths, p->bandwidths_len * size);
    return hash;
}

void nw_case_describe(const nw_case_t *c, char *buffer, size_t length)
{
    snprintf(buffer, length,
        "f%d %s m=%lld n=%lld d=%lld p=%lld bandwidths=%lld (h0=%g) pads=(%lld,%lld,%lld,%lld,%lld) weighted=%d "
        "lse=%d ess=%d entropy=%d variance=%d",
        c->precision, nw_kind_name(c->kind), (long long)c->m, (long long)c->n, (long long)c->d, (long long)c->p,
        (long long)c->bandwidth_count, c->bandwidths[0], (long long)c->query_pad, (long long)c->sample_pad,
        (long long)c->response_pad, (long long)c->output_pad, (long long)c->variance_pad, c->weighted, c->want_lse,
        c->want_ess, c->want_entropy, c->want_variance);
}

static double *widen(int precision, const void *buffer, size_t len)
{
    double *out = malloc((len ? len : 1) * sizeof(double));
    for (size_t e = 0; e < len; e++) out[e] = load(precision, buffer, e);
    return out;
}

/* |got - want| <= tol * scale, infinities equal, NaN never. */
static int close_to(double got, double want, double tol, double scale)
{
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * scale;
}

static int check_matrix(const char *name, const double *got, const double *want, int64_t rows, int64_t width,
    int64_t pitch, double tol, double scale, char *why, size_t why_len)
{
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t col = 0; col < pitch; col++) {
            double g = got[i * pitch + col];
            if (col >= width) {
                if (g != NW_SENTINEL) {
                    snprintf(why, why_len, "%s padding overwritten at row %lld col %lld", name, (long long)i, (long long)col);
                    return 1;
                }
                continue;
            }
            if (!close_to(g, want[i * pitch + col], tol, scale)) {
                snprintf(why, why_len, "%s[%lld,%lld] = %.17g, reference %.17g (tolerance %g)", name, (long long)i,
                    (long long)col, g, want[i * pitch + col], tol * scale);
                return 1;
            }
        }
    }
    return 0;
}

/* A vector of m values (want NULL: not requested, so every element must still be the canary), then its canary. */
static int check_vector(const char *name, const double *got, const double *want, const double *lse, int64_t m, double tol,
    int relative, char *why, size_t why_len)
{
    for (int64_t i = 0; i < m && want; i++) {
        double scale = relative ? fmax(1.0, fabs(want[i])) : fmax(1.0, lse && isfinite(lse[i]) ? fabs(lse[i]) : 1.0);
        if (!close_to(got[i], want[i], tol, scale)) {
            snprintf(why, why_len, "%s[%lld] = %.17g, reference %.17g", name, (long long)i, got[i], want[i]);
            return 1;
        }
    }
    for (int64_t i = want ? m : 0; i <= m; i++) {
        if (got[i] != NW_CANARY) {
            snprintf(why, why_len, "%s written at %lld (beyond its length, or when not requested)", name, (long long)i);
            return 1;
        }
    }
    return 0;
}

int nw_case_check(const nw_case_t *c, const nw_prepared_t *p, char *why, size_t why_len)
{
    int pr = c->precision;
    double tol = pr == 32 ? 2e-5 : 1e-11;
    int64_t qp = pitch_of(c->d, c->query_pad), xp = pitch_of(c->d, c->sample_pad), yp = pitch_of(c->p, c->response_pad);
    int64_t op = pitch_of(c->p, c->output_pad), vp = pitch_of(c->p, c->variance_pad);
    double *x = widen(pr, p->samples, p->samples_len);
    double *y = widen(pr, p->responses, p->responses_len);
    double *h = widen(pr, p->bandwidths, p->bandwidths_len);
    double max_y = 0;
    for (int64_t j = 0; j < c->n; j++)
        for (int64_t col = 0; col < c->p; col++) max_y = fmax(max_y, fabs(y[j * yp + col]));
    int failed = 0;

    if (c->kind == NW_PREDICT || c->kind == NW_PREDICT_WS) {
        double *q = widen(pr, p->queries, p->queries_len);
        double *w = c->weighted ? widen(pr, p->log_weights, p->weights_len) : NULL;
        double *o = widen(pr, p->output, p->output_len), *v = widen(pr, p->variance, p->variance_len);
        double *lse = widen(pr, p->lse, p->vector_len), *ess = widen(pr, p->ess, p->vector_len);
        double *ent = widen(pr, p->entropy, p->vector_len);
        double *ref_o = calloc(p->output_len, sizeof(double)), *ref_v = calloc(p->variance_len, sizeof(double));
        double *ref_lse = calloc(p->vector_len, sizeof(double)), *ref_ess = calloc(p->vector_len, sizeof(double));
        double *ref_ent = calloc(p->vector_len, sizeof(double));
        nw_reference_predict(c->m, c->n, c->d, c->p, q, qp, x, xp, y, yp, h, c->bandwidth_count, w, ref_o, op, ref_lse,
            ref_ess, ref_ent, ref_v, vp);
        failed = check_matrix("output", o, ref_o, c->m, c->p, op, tol, fmax(max_y, 1e-300), why, why_len);
        if (!failed)
            failed = check_vector("log_sum_exp", lse, c->want_lse ? ref_lse : NULL, NULL, c->m, tol, 1, why, why_len);
        if (!failed)
            failed = check_vector("effective_sample_size", ess, c->want_ess ? ref_ess : NULL, NULL, c->m,
                pr == 32 ? 2e-4 : 1e-9, 1, why, why_len);
        if (!failed)
            failed = check_vector("entropy", ent, c->want_entropy ? ref_ent : NULL, ref_lse, c->m, pr == 32 ? 2e-4 : 1e-9,
                0, why, why_len);
        if (!failed && c->want_variance)
            failed = check_matrix("local_variance", v, ref_v, c->m, c->p, vp, pr == 32 ? 1e-4 : 1e-10,
                fmax(1.0, max_y * max_y), why, why_len);
        if (!failed && !c->want_variance) {
            for (size_t e = 0; e < p->variance_len; e++)
                if (v[e] != NW_SENTINEL) { snprintf(why, why_len, "local_variance written when not requested"); failed = 1; break; }
        }
        free(q); free(w); free(o); free(v); free(lse); free(ess); free(ent);
        free(ref_o); free(ref_v); free(ref_lse); free(ref_ess); free(ref_ent);
    } else if (c->kind == NW_CV || c->kind == NW_CV_WS) {
        double want = nw_reference_cv(c->n, c->d, c->p, x, xp, y, yp, h, c->bandwidth_count);
        double got = p->score[0];
        int ok = isnan(want) ? isnan(got) : fabs(got - want) <= (pr == 32 ? 1e-4 : 1e-10) * fmax(want, 1e-3 * max_y * max_y);
        if (!ok) { snprintf(why, why_len, "CV = %.17g, reference %.17g", got, want); failed = 1; }
        else if (p->score[1] != NW_CANARY) { snprintf(why, why_len, "written past the score"); failed = 1; }
    } else {
        /* Selection: positive finite bandwidths; the reported CV is CV at them (reference, and the library's own
         * cross-validation) and no worse than CV at the normal-reference start. */
        double h0[NW_MAX_D];
        nw_normal_reference(c->n, c->d, x, xp, c->bandwidth_count, h0);
        int beyond = 0;
        for (int64_t k = 0; k < c->bandwidth_count && !failed; k++) {
            if (!(h[k] > 0)) { snprintf(why, why_len, "bandwidth[%lld] = %g", (long long)k, h[k]); failed = 1; }
            /* The managed search documents h0 * 2^(+-30) as its range; see nw_selection_beyond_range. */
            if (!(h[k] >= h0[k] * 0x1p-30 * (1 - 1e-6) && h[k] <= h0[k] * 0x1p30 * (1 + 1e-6))) beyond = 1;
        }
        if (beyond) nw_selection_beyond_range++;
        if (!failed && h[c->bandwidth_count] != NW_CANARY) { snprintf(why, why_len, "written past the bandwidths"); failed = 1; }
        double at = nw_reference_cv(c->n, c->d, c->p, x, xp, y, yp, h, c->bandwidth_count);
        if (pr == 32)
            for (int64_t k = 0; k < c->bandwidth_count; k++) h0[k] = (double)(float)h0[k];
        double start = nw_reference_cv(c->n, c->d, c->p, x, xp, y, yp, h0, c->bandwidth_count);
        double rel = pr == 32 ? 1e-4 : 1e-9;
        if (!failed && c->want_score) {
            double got = p->score[0], library = NAN;
            fka_status status = pr == 32
                ? fka_nw_cross_validation_f32(c->n, c->d, c->p, p->samples, p->call.samples_pitch, p->responses,
                      p->call.responses_pitch, p->bandwidths, c->bandwidth_count, &library)
                : fka_nw_cross_validation_f64(c->n, c->d, c->p, p->samples, p->call.samples_pitch, p->responses,
                      p->call.responses_pitch, p->bandwidths, c->bandwidth_count, &library);
            double scale = fmax(at, 1e-6);
            int finite = 1;
            for (int64_t k = 0; k < c->bandwidth_count; k++) finite &= isfinite(h[k]) != 0;
            if (!finite && status == FKA_ERR_ARGUMENT) library = got; /* an infinite bandwidth cannot be passed back */
            else if (!finite) status = FKA_ERR_INTERNAL;
            if ((finite && status != FKA_OK) || !(fabs(got - library) <= rel * scale) || !(fabs(got - at) <= rel * scale)) {
                snprintf(why, why_len, "selected CV %.17g, fka_nw_cross_validation %.17g (%s), reference %.17g", got, library,
                    fka_status_string(status), at);
                failed = 1;
            } else if (p->score[1] != NW_CANARY) { snprintf(why, why_len, "written past cv"); failed = 1; }
        } else if (!failed && (p->score[0] != NW_CANARY || p->score[1] != NW_CANARY)) {
            snprintf(why, why_len, "cv written although NULL was passed");
            failed = 1;
        }
        if (!failed && !(at <= start * (1 + rel) + 1e-12)) {
            snprintf(why, why_len, "CV at the selected bandwidths %.17g exceeds CV at the normal-reference start %.17g", at, start);
            failed = 1;
        }
    }
    free(x); free(y); free(h);
    return failed;
}

int nw_run_case(const nw_case_t *c, rng_t *rng, char *why, size_t why_len)
{
    nw_prepared_t p;
    int status = nw_case_prepare(c, rng, &p);
    if (status != 0) {
        snprintf(why, why_len, "workspace size query returned %s: %s", fka_status_string(status), fka_last_error_message());
        nw_case_free(&p);
        return 1;
    }
    status = nw_invoke(&p.call);
    int failed = 0;
    if (status != FKA_OK) {
        snprintf(why, why_len, "returned %s: %s", fka_status_string(status), fka_last_error_message());
        failed = 1;
    } else if (fka_last_error_message()[0] != '\0') {
        snprintf(why, why_len, "succeeded but the last-error message is \"%s\"", fka_last_error_message());
        failed = 1;
    } else {
        failed = nw_case_check(c, &p, why, why_len);
    }
    nw_case_free(&p);
    return failed;
}
