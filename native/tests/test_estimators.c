/* The estimator exports (fka_nw_*, and fka_eb_posterior_* at the end): the hand-worked values of MATH.md section 6, every export (f32/f64, with and without a
 * workspace) against the naive double reference feature by feature and on random cases, bandwidth selection (its CV is
 * fka_nw_cross_validation at the selected bandwidths and no worse than at the normal-reference start), and every error
 * code with the argument named in fka_last_error_message() and the outputs untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fka_test_nw.h"

static int failures, passes;

static void expect_case(const char *name, const nw_case_t *c, rng_t *rng)
{
    char why[512], desc[512];
    if (nw_run_case(c, rng, why, sizeof why) == 0) {
        passes++;
        return;
    }
    failures++;
    nw_case_describe(c, desc, sizeof desc);
    printf("FAIL %s [%s]: %s\n", name, desc, why);
}

static void expect_near(const char *what, fka_status status, double got, double want, double tol)
{
    if (status == FKA_OK && fabs(got - want) <= tol) { passes++; return; }
    failures++;
    printf("FAIL %s: status %s, got %.9g, want %.9g (%s)\n", what, fka_status_string(status), got, want, fka_last_error_message());
}

/* MATH.md section 6: d = 1, X = (0, 1, 2), Y = (0, 1, 4), h = 1. */
static void math_examples(void)
{
    double x[3] = { 0, 1, 2 }, y[3] = { 0, 1, 4 }, h = 1, q = 1, g, lse, ess, H, var, cv;
    float xf[3] = { 0, 1, 2 }, yf[3] = { 0, 1, 4 }, hf = 1, qf = 1, gf, lsef, essf, Hf, varf;
    double w[3] = { 0.274069, 0.451863, 0.274069 }, entropy = 0;
    for (int j = 0; j < 3; j++) entropy -= w[j] * log(w[j]);

    fka_status s = fka_nw_predict_f64(1, 3, 1, 1, &q, 0, x, 0, y, 0, &h, 1, NULL, &g, 0, &lse, &ess, &H, &var, 0);
    expect_near("MATH 6 g(1) f64", s, g, 1.548137, 1e-6);
    expect_near("MATH 6 LSE f64", s, lse, 0.794377, 1e-6);
    expect_near("MATH 6 ESS f64", s, ess, 2.821613, 1e-6);
    expect_near("MATH 6 local variance f64", s, var, 2.440232, 1e-6);
    expect_near("MATH 6 entropy f64", s, H, entropy, 2e-6);
    s = fka_nw_predict_f32(1, 3, 1, 1, &qf, 0, xf, 0, yf, 0, &hf, 1, NULL, &gf, 0, &lsef, &essf, &Hf, &varf, 0);
    expect_near("MATH 6 g(1) f32", s, gf, 1.548137, 2e-6);
    expect_near("MATH 6 LSE f32", s, lsef, 0.794377, 2e-6);
    expect_near("MATH 6 ESS f32", s, essf, 2.821613, 1e-5);
    expect_near("MATH 6 local variance f32", s, varf, 2.440232, 1e-5);
    expect_near("MATH 6 entropy f32", s, Hf, entropy, 1e-5);

    /* With a per-dimension bandwidth array of length d = 1, and with log-weights 0 (= no weights): the same numbers. */
    double zero[3] = { 0, 0, 0 };
    s = fka_nw_predict_f64(1, 3, 1, 1, &q, 0, x, 0, y, 0, &h, 1, zero, &g, 0, NULL, NULL, NULL, NULL, 0);
    expect_near("MATH 6 g(1) with zero log-weights", s, g, 1.548137, 1e-6);

    static const struct { double h, cv; } cvs[] = { { 1, 4.507299 }, { 0.5, 3.676578 }, { 2, 5.849069 } };
    for (int i = 0; i < 3; i++) {
        char what[64];
        double hh = cvs[i].h;
        float hhf = (float)hh;
        double cvf;
        snprintf(what, sizeof what, "MATH 6 CV(%g) f64", hh);
        s = fka_nw_cross_validation_f64(3, 1, 1, x, 0, y, 0, &hh, 1, &cv);
        expect_near(what, s, cv, cvs[i].cv, 1e-6);
        snprintf(what, sizeof what, "MATH 6 CV(%g) f32", hh);
        s = fka_nw_cross_validation_f32(3, 1, 1, xf, 0, yf, 0, &hhf, 1, &cvf);
        expect_near(what, s, cvf, cvs[i].cv, 1e-5);
        int64_t bytes = 0;
        s = fka_nw_cross_validation_workspace_size_f64(3, 1, 1, 1, &bytes);
        unsigned char *ws = s == FKA_OK ? malloc((size_t)bytes) : NULL;
        snprintf(what, sizeof what, "MATH 6 CV(%g) f64 ws", hh);
        s = s == FKA_OK ? fka_nw_cross_validation_ws_f64(3, 1, 1, x, 0, y, 0, &hh, 1, &cv, ws, bytes) : s;
        expect_near(what, s, cv, cvs[i].cv, 1e-6);
        free(ws);
    }

    /* Selection on the same data: the selected CV is at most CV(h0), h0 = 0.694762 (MATH 6). */
    double h0 = 0.694762, cv0, hs = -1, cvs_sel = -1;
    s = fka_nw_cross_validation_f64(3, 1, 1, x, 0, y, 0, &h0, 1, &cv0);
    fka_status s2 = fka_nw_select_bandwidth_f64(3, 1, 1, x, 0, y, 0, &hs, 1, &cvs_sel);
    double cv_at = NAN;
    fka_status s3 = fka_nw_cross_validation_f64(3, 1, 1, x, 0, y, 0, &hs, 1, &cv_at);
    if (s == FKA_OK && s2 == FKA_OK && s3 == FKA_OK && hs > 0 && cvs_sel <= cv0 * (1 + 1e-12)
        && fabs(cvs_sel - cv_at) <= 1e-12 * cv_at) passes++;
    else {
        failures++;
        printf("FAIL MATH 6 selection: h = %g, CV %.9g (cross_validation %.9g), CV(h0) = %.9g (%s)\n", hs, cvs_sel, cv_at, cv0,
            fka_last_error_message());
    }

    /* n = 1: CV is NaN (no leave-one-out estimate), still FKA_OK. */
    double one = 1;
    cv = 0;
    s = fka_nw_cross_validation_f64(1, 1, 1, x, 0, y, 0, &one, 1, &cv);
    if (s == FKA_OK && isnan(cv)) passes++;
    else { failures++; printf("FAIL CV with n = 1: %s, %g\n", fka_status_string(s), cv); }

    /* n = 0 predict: g = 0, LSE = -inf, ESS = 0, H = 0, variance 0, with NULL samples and responses. */
    double out[2] = { 9, 9 }, l = 9, e = 9, en = 9, va[2] = { 9, 9 };
    s = fka_nw_predict_f64(1, 0, 1, 2, &q, 0, NULL, 0, NULL, 0, &h, 1, NULL, out, 0, &l, &e, &en, va, 0);
    if (s == FKA_OK && out[0] == 0 && out[1] == 0 && l == -INFINITY && e == 0 && en == 0 && va[0] == 0 && va[1] == 0) passes++;
    else { failures++; printf("FAIL n = 0 predict: %s %s\n", fka_status_string(s), fka_last_error_message()); }

    /* Every sample dropped by a -inf log-weight: an empty row. */
    double drop[3] = { -INFINITY, -INFINITY, -INFINITY };
    l = 9;
    s = fka_nw_predict_f64(1, 3, 1, 1, &q, 0, x, 0, y, 0, &h, 1, drop, &g, 0, &l, NULL, NULL, NULL, 0);
    if (s == FKA_OK && g == 0 && l == -INFINITY) passes++;
    else { failures++; printf("FAIL all samples dropped: %s g = %g LSE = %g\n", fka_status_string(s), g, l); }
}

static nw_case_t base(int precision, int kind)
{
    nw_case_t c;
    memset(&c, 0, sizeof c);
    c.precision = precision;
    c.kind = kind;
    c.m = 5; c.n = kind == NW_SELECT ? 30 : 9; c.d = 3; c.p = 2; c.bandwidth_count = 1;
    c.bandwidths[0] = 0.7; c.bandwidths[1] = 1.3; c.bandwidths[2] = 0.5;
    c.query_pad = c.sample_pad = c.response_pad = c.output_pad = c.variance_pad = -1;
    c.want_score = 1;
    return c;
}

static void feature_cases(int precision, int kind, rng_t *rng)
{
    int predict = kind == NW_PREDICT || kind == NW_PREDICT_WS;
    nw_case_t c;
    c = base(precision, kind); expect_case("one bandwidth", &c, rng);
    c = base(precision, kind); c.bandwidth_count = 3; expect_case("per-dimension bandwidths", &c, rng);
    c = base(precision, kind); c.query_pad = 2; c.sample_pad = 3; c.response_pad = 1; c.output_pad = 4; c.variance_pad = 2;
    c.want_variance = 1; expect_case("pitches", &c, rng);
    c = base(precision, kind); c.d = 1; c.p = 1; expect_case("d = p = 1", &c, rng);
    c = base(precision, kind); c.n = kind == NW_SELECT ? 120 : 300; c.d = 2; expect_case("n beyond one key tile", &c, rng);
    c = base(precision, kind); c.bandwidths[0] = 0.05; expect_case("small bandwidth", &c, rng);
    if (kind == NW_SELECT) {
        c = base(precision, kind); c.want_score = 0; expect_case("cv NULL", &c, rng);
        c = base(precision, kind); c.n = 2; c.d = 1; expect_case("n = 2", &c, rng);
        c = base(precision, kind); c.d = 4; c.bandwidth_count = 4; c.p = 3; expect_case("per-dimension, d = 4, p = 3", &c, rng);
    }
    if (kind == NW_CV || kind == NW_CV_WS) {
        c = base(precision, kind); c.n = 2; expect_case("n = 2", &c, rng);
    }
    if (predict) {
        c = base(precision, kind); c.weighted = 1; expect_case("log-weights", &c, rng);
        c = base(precision, kind); c.want_lse = c.want_ess = c.want_entropy = c.want_variance = 1;
        expect_case("every diagnostic", &c, rng);
        c = base(precision, kind); c.want_lse = c.want_ess = c.want_entropy = c.want_variance = 1; c.weighted = 1;
        c.bandwidth_count = 3; c.query_pad = 1; c.output_pad = 2; expect_case("every diagnostic, weighted, per-dimension", &c, rng);
        c = base(precision, kind); c.want_ess = 1; expect_case("ESS only", &c, rng);
        c = base(precision, kind); c.want_entropy = 1; c.weighted = 1; expect_case("entropy only, weighted", &c, rng);
        c = base(precision, kind); c.n = 0; c.want_lse = c.want_ess = c.want_entropy = c.want_variance = 1;
        expect_case("n = 0", &c, rng);
        c = base(precision, kind); c.m = 0; c.want_lse = c.want_variance = 1; expect_case("m = 0 (no-op)", &c, rng);
        c = base(precision, kind); c.d = 12; c.bandwidth_count = 12; for (int k = 0; k < 12; k++) c.bandwidths[k] = 0.5 + 0.1 * k;
        c.want_entropy = 1; expect_case("d = 12 per-dimension", &c, rng);
        if (kind == NW_PREDICT_WS) {
            c = base(precision, kind); c.workspace_extra = 1000; c.workspace_misalign = 5; c.want_ess = 1;
            expect_case("misaligned, larger workspace", &c, rng);
        }
    }
    int rounds = kind == NW_SELECT ? 40 : 120;
    for (int r = 0; r < rounds; r++) {
        c = nw_random_case(rng, precision, kind);
        expect_case("random", &c, rng);
    }
}

/* ---- errors --------------------------------------------------------------------------------------------------------- */

static void expect(const char *what, fka_status got, fka_status want, const char *needle)
{
    const char *message = fka_last_error_message();
    int ok = got == want && (want == FKA_OK ? message[0] == '\0' : strstr(message, needle) != NULL);
    if (ok) { passes++; return; }
    failures++;
    printf("FAIL %s: got %s, want %s (need \"%s\" in \"%s\")\n", what, fka_status_string(got), fka_status_string(want),
        needle, message);
}

typedef struct {
    const char *name;
    fka_status want;
    const char *needle;
    unsigned kinds; /* bit mask of the NW_* kinds it applies to */
} nw_fault_t;

#define K_PRED ((1u << NW_PREDICT) | (1u << NW_PREDICT_WS))
#define K_CV ((1u << NW_CV) | (1u << NW_CV_WS))
#define K_SEL (1u << NW_SELECT)
#define K_WS ((1u << NW_PREDICT_WS) | (1u << NW_CV_WS))
#define K_ALL (K_PRED | K_CV | K_SEL)

enum {
    E_NULL_QUERIES, E_NULL_SAMPLES, E_NULL_RESPONSES, E_NULL_OUTPUT, E_NULL_BANDWIDTHS, E_NULL_SCORE, E_NEG_M, E_NEG_N,
    E_ZERO_N_CV, E_ONE_N_SEL, E_ZERO_D, E_ZERO_P, E_BW_COUNT, E_BW_COUNT_ZERO, E_NEG_PITCH, E_SMALL_PITCH,
    E_SMALL_OUTPUT_PITCH, E_SMALL_VARIANCE_PITCH, E_HUGE_M, E_HUGE_N, E_HUGE_D, E_HUGE_P, E_HUGE_PITCH, E_EXTENT,
    E_NAN_BW, E_ZERO_BW, E_NEG_BW, E_INF_BW, E_NAN_WEIGHT, E_INF_WEIGHT, E_OVERLAP_OUTPUT, E_OVERLAP_LSE,
    E_OVERLAP_VARIANCE, E_OVERLAP_DIAGNOSTICS, E_OVERLAP_WORKSPACE, E_OVERLAP_BANDWIDTHS, E_OVERLAP_SCORE, E_WS_SMALL,
    E_WS_NEGATIVE, E_WS_NULL, E_COUNT
};

static const nw_fault_t nw_faults[E_COUNT] = {
    [E_NULL_QUERIES] = { "NULL queries", FKA_ERR_NULL_POINTER, "queries", K_PRED },
    [E_NULL_SAMPLES] = { "NULL samples", FKA_ERR_NULL_POINTER, "samples", K_ALL },
    [E_NULL_RESPONSES] = { "NULL responses", FKA_ERR_NULL_POINTER, "responses", K_ALL },
    [E_NULL_OUTPUT] = { "NULL output", FKA_ERR_NULL_POINTER, "output", K_PRED },
    [E_NULL_BANDWIDTHS] = { "NULL bandwidths", FKA_ERR_NULL_POINTER, "bandwidths", K_ALL },
    [E_NULL_SCORE] = { "NULL score", FKA_ERR_NULL_POINTER, "score", K_CV },
    [E_NEG_M] = { "query_count < 0", FKA_ERR_SHAPE, "query_count", K_PRED },
    [E_NEG_N] = { "sample_count < 0", FKA_ERR_SHAPE, "sample_count", K_ALL },
    [E_ZERO_N_CV] = { "sample_count = 0 (cross-validation)", FKA_ERR_SHAPE, "sample_count must be at least 1", K_CV },
    [E_ONE_N_SEL] = { "sample_count = 1 (selection)", FKA_ERR_SHAPE, "sample_count must be at least 2", K_SEL },
    [E_ZERO_D] = { "dimension = 0", FKA_ERR_SHAPE, "dimension", K_ALL },
    [E_ZERO_P] = { "response_count = 0", FKA_ERR_SHAPE, "response_count", K_ALL },
    [E_BW_COUNT] = { "bandwidth_count = 2 with d = 3", FKA_ERR_SHAPE, "bandwidth_count", K_ALL },
    [E_BW_COUNT_ZERO] = { "bandwidth_count = 0", FKA_ERR_SHAPE, "bandwidth_count", K_ALL },
    [E_NEG_PITCH] = { "samples_pitch < 0", FKA_ERR_SHAPE, "samples_pitch", K_ALL },
    [E_SMALL_PITCH] = { "responses_pitch < width", FKA_ERR_SHAPE, "responses_pitch", K_ALL },
    [E_SMALL_OUTPUT_PITCH] = { "output_pitch < width", FKA_ERR_SHAPE, "output_pitch", K_PRED },
    [E_SMALL_VARIANCE_PITCH] = { "local_variance_pitch < width", FKA_ERR_SHAPE, "local_variance_pitch", K_PRED },
    [E_HUGE_M] = { "query_count > INT32_MAX", FKA_ERR_OVERFLOW, "query_count", K_PRED },
    [E_HUGE_N] = { "sample_count > INT32_MAX", FKA_ERR_OVERFLOW, "sample_count", K_ALL },
    [E_HUGE_D] = { "dimension = 2^40", FKA_ERR_OVERFLOW, "dimension", K_ALL },
    [E_HUGE_P] = { "response_count = 2^33", FKA_ERR_OVERFLOW, "response_count", K_ALL },
    [E_HUGE_PITCH] = { "samples_pitch > INT32_MAX", FKA_ERR_OVERFLOW, "samples_pitch", K_ALL },
    [E_EXTENT] = { "rows * pitch * size overflows int64", FKA_ERR_OVERFLOW, "samples", K_ALL },
    [E_NAN_BW] = { "NaN bandwidth", FKA_ERR_ARGUMENT, "bandwidth", K_PRED | K_CV },
    [E_ZERO_BW] = { "zero bandwidth", FKA_ERR_ARGUMENT, "bandwidth", K_PRED | K_CV },
    [E_NEG_BW] = { "negative per-dimension bandwidth", FKA_ERR_ARGUMENT, "bandwidth", K_PRED | K_CV },
    [E_INF_BW] = { "infinite bandwidth", FKA_ERR_ARGUMENT, "bandwidth", K_PRED | K_CV },
    [E_NAN_WEIGHT] = { "NaN log-weight", FKA_ERR_ARGUMENT, "sampleLogWeights", K_PRED },
    [E_INF_WEIGHT] = { "+inf log-weight", FKA_ERR_ARGUMENT, "sampleLogWeights", K_PRED },
    [E_OVERLAP_OUTPUT] = { "output overlaps queries", FKA_ERR_ARGUMENT, "output overlaps queries", K_PRED },
    [E_OVERLAP_LSE] = { "log_sum_exp overlaps output", FKA_ERR_ARGUMENT, "log_sum_exp overlaps output", K_PRED },
    [E_OVERLAP_VARIANCE] = { "local_variance overlaps responses", FKA_ERR_ARGUMENT, "local_variance overlaps responses", K_PRED },
    [E_OVERLAP_DIAGNOSTICS] = { "entropy overlaps effective_sample_size", FKA_ERR_ARGUMENT, "entropy overlaps effective_sample_size", K_PRED },
    [E_OVERLAP_WORKSPACE] = { "workspace overlaps samples", FKA_ERR_ARGUMENT, "workspace overlaps samples", K_WS },
    [E_OVERLAP_BANDWIDTHS] = { "selected bandwidths overlap samples", FKA_ERR_ARGUMENT, "bandwidths overlaps samples", K_SEL },
    [E_OVERLAP_SCORE] = { "score overlaps responses", FKA_ERR_ARGUMENT, "overlaps responses", K_CV | K_SEL },
    [E_WS_SMALL] = { "workspace too small", FKA_ERR_WORKSPACE, "workspace", K_WS },
    [E_WS_NEGATIVE] = { "workspace_bytes < 0", FKA_ERR_WORKSPACE, "workspace_bytes", K_WS },
    [E_WS_NULL] = { "NULL workspace with bytes > 0", FKA_ERR_NULL_POINTER, "workspace", K_WS },
};

static void set_element(int precision, void *buffer, int64_t e, double x)
{
    if (precision == 32) ((float *)buffer)[e] = (float)x;
    else ((double *)buffer)[e] = x;
}

static void apply(int fault, nw_call_t *a, nw_prepared_t *p)
{
    switch (fault) {
    case E_NULL_QUERIES: a->queries = NULL; break;
    case E_NULL_SAMPLES: a->samples = NULL; break;
    case E_NULL_RESPONSES: a->responses = NULL; break;
    case E_NULL_OUTPUT: a->output = NULL; break;
    case E_NULL_BANDWIDTHS: a->bandwidths = NULL; break;
    case E_NULL_SCORE: a->score = NULL; break;
    case E_NEG_M: a->m = -1; break;
    case E_NEG_N: a->n = -2; break;
    case E_ZERO_N_CV: a->n = 0; break;
    case E_ONE_N_SEL: a->n = 1; break;
    case E_ZERO_D: a->d = 0; break;
    case E_ZERO_P: a->p = 0; break;
    case E_BW_COUNT: a->bandwidth_count = 2; break; /* d = 3 */
    case E_BW_COUNT_ZERO: a->bandwidth_count = 0; break;
    case E_NEG_PITCH: a->samples_pitch = -4; break;
    case E_SMALL_PITCH: a->responses_pitch = a->p - 1; break;
    case E_SMALL_OUTPUT_PITCH: a->output_pitch = 1; break;
    case E_SMALL_VARIANCE_PITCH: a->variance = p->variance; a->variance_pitch = 1; break;
    case E_HUGE_M: a->m = (int64_t)INT32_MAX + 1; break;
    case E_HUGE_N: a->n = (int64_t)INT32_MAX + 5; break;
    case E_HUGE_D: a->d = INT64_C(1) << 40; break;
    case E_HUGE_P: a->p = INT64_C(1) << 33; break;
    case E_HUGE_PITCH: a->samples_pitch = INT64_C(1) << 33; break;
    case E_EXTENT: a->n = INT32_MAX; a->samples_pitch = INT32_MAX; break;
    case E_NAN_BW: set_element(a->precision, p->bandwidths, 0, NAN); break;
    case E_ZERO_BW: set_element(a->precision, p->bandwidths, 0, 0); break;
    case E_NEG_BW: set_element(a->precision, p->bandwidths, 2, -0.5); break; /* bandwidth_count = 3 */
    case E_INF_BW: set_element(a->precision, p->bandwidths, 0, INFINITY); break;
    case E_NAN_WEIGHT: set_element(a->precision, p->log_weights, 2, NAN); break;
    case E_INF_WEIGHT: set_element(a->precision, p->log_weights, 1, INFINITY); break;
    case E_OVERLAP_OUTPUT: a->output = a->queries; break;
    case E_OVERLAP_LSE: a->lse = (char *)p->output + (a->precision == 32 ? 4 : 8); break;
    case E_OVERLAP_VARIANCE: a->variance = a->responses; a->variance_pitch = a->responses_pitch; break;
    case E_OVERLAP_DIAGNOSTICS: a->ess = p->ess; a->entropy = p->ess; break;
    case E_OVERLAP_WORKSPACE: a->workspace = a->samples; a->workspace_bytes = 16; break;
    case E_OVERLAP_BANDWIDTHS: a->bandwidths = a->samples; break;
    case E_OVERLAP_SCORE: a->score = (double *)a->responses; break;
    case E_WS_SMALL: a->workspace_bytes = p->workspace_required - 1; break;
    case E_WS_NEGATIVE: a->workspace_bytes = -1; break;
    case E_WS_NULL: a->workspace = NULL; break;
    }
}

static void call_faults(int precision, int kind)
{
    rng_t rng = { 777u + (uint64_t)kind * 13u + (uint64_t)precision };
    for (int fault = 0; fault < E_COUNT; fault++) {
        if (!(nw_faults[fault].kinds & (1u << kind))) continue;
        nw_case_t c = base(precision, kind);
        c.n = 6; c.m = 3; c.want_lse = 1; /* d = 3, p = 2 */
        if (fault == E_NEG_BW) c.bandwidth_count = 3;
        if (fault == E_NAN_WEIGHT || fault == E_INF_WEIGHT) c.weighted = 1; /* log-weights change the workspace size */
        nw_prepared_t p;
        if (nw_case_prepare(&c, &rng, &p) != 0) { printf("FAIL prepare\n"); failures++; continue; }
        apply(fault, &p.call, &p);
        int clobbers = fault == E_OVERLAP_OUTPUT || fault == E_OVERLAP_VARIANCE || fault == E_OVERLAP_BANDWIDTHS
            || fault == E_OVERLAP_SCORE || fault == E_OVERLAP_WORKSPACE;
        uint64_t before = nw_output_hash(&p);
        unsigned char *inputs = malloc(p.samples_len * 8 + 1);
        memcpy(inputs, p.samples, p.samples_len * (precision == 32 ? 4 : 8));
        fka_status status = nw_invoke(&p.call);
        char what[160];
        snprintf(what, sizeof what, "f%d %s: %s", precision, nw_kind_name(kind), nw_faults[fault].name);
        expect(what, status, nw_faults[fault].want, nw_faults[fault].needle);
        if (nw_output_hash(&p) != before || (clobbers && memcmp(inputs, p.samples, p.samples_len * (precision == 32 ? 4 : 8)) != 0)) {
            printf("FAIL %s: an output (or an overlapped input) was written on error\n", what);
            failures++;
        }
        free(inputs);
        nw_case_free(&p);
    }
    /* A successful call clears the message. */
    nw_case_t good = base(precision, kind);
    char why[512];
    rng_t r2 = { 99 };
    if (nw_run_case(&good, &r2, why, sizeof why) != 0) { printf("FAIL clear after success: %s\n", why); failures++; }
    else passes++;
}

static void workspace_size_faults(void)
{
    for (int precision = 32; precision <= 64; precision += 32) {
        fka_status (*pws)(int64_t, int64_t, int64_t, int64_t, int64_t, int32_t, int32_t, int32_t, int32_t, int64_t *) =
            precision == 32 ? fka_nw_predict_workspace_size_f32 : fka_nw_predict_workspace_size_f64;
        fka_status (*cws)(int64_t, int64_t, int64_t, int64_t, int64_t *) =
            precision == 32 ? fka_nw_cross_validation_workspace_size_f32 : fka_nw_cross_validation_workspace_size_f64;
        char name[64];
        int64_t bytes = 77, plain = 0, all = 0;
        snprintf(name, sizeof name, "nw_predict_workspace_size_f%d", precision);
        expect(name, pws(10, 20, 3, 2, 1, 0, 0, 0, 0, &plain), FKA_OK, "");
        expect(name, pws(10, 20, 3, 2, 3, 1, 1, 1, 1, &all), FKA_OK, "");
        if (!(plain > 63 && all > plain)) { failures++; printf("FAIL %s: sizes %lld, %lld\n", name, (long long)plain, (long long)all); }
        else passes++;
        expect(name, pws(10, 20, 3, 2, 1, 0, 0, 0, 0, NULL), FKA_ERR_NULL_POINTER, "bytes");
        expect(name, pws(-1, 20, 3, 2, 1, 0, 0, 0, 0, &bytes), FKA_ERR_SHAPE, "query_count");
        if (bytes != 0) { printf("FAIL %s: *bytes not 0 on error\n", name); failures++; }
        expect(name, pws(10, -1, 3, 2, 1, 0, 0, 0, 0, &bytes), FKA_ERR_SHAPE, "sample_count");
        expect(name, pws(10, 20, 0, 2, 1, 0, 0, 0, 0, &bytes), FKA_ERR_SHAPE, "dimension");
        expect(name, pws(10, 20, 3, 0, 1, 0, 0, 0, 0, &bytes), FKA_ERR_SHAPE, "response_count");
        expect(name, pws(10, 20, 3, 2, 2, 0, 0, 0, 0, &bytes), FKA_ERR_SHAPE, "bandwidth_count");
        expect(name, pws(INT64_C(1) << 35, 20, 3, 2, 1, 0, 0, 0, 0, &bytes), FKA_ERR_OVERFLOW, "query_count");
        expect(name, pws(2000000000, 2000000000, 1000, 1000, 1000, 1, 1, 1, 1, &bytes), FKA_ERR_OVERFLOW, "2 GiB");
        snprintf(name, sizeof name, "nw_cross_validation_workspace_size_f%d", precision);
        expect(name, cws(20, 3, 2, 3, &bytes), FKA_OK, "");
        expect(name, cws(20, 3, 2, 3, NULL), FKA_ERR_NULL_POINTER, "bytes");
        expect(name, cws(-5, 3, 2, 3, &bytes), FKA_ERR_SHAPE, "sample_count");
        expect(name, cws(20, 0, 2, 1, &bytes), FKA_ERR_SHAPE, "dimension");
        expect(name, cws(20, 3, -2, 1, &bytes), FKA_ERR_SHAPE, "response_count");
        expect(name, cws(20, 3, 2, 4, &bytes), FKA_ERR_SHAPE, "bandwidth_count");
        expect(name, cws(20, INT64_C(1) << 31, 2, 1, &bytes), FKA_ERR_OVERFLOW, "dimension");
        expect(name, cws(2000000000, 1000, 1000, 1000, &bytes), FKA_ERR_OVERFLOW, "2 GiB");
    }
}

/* ---- empirical Bayes (fka_eb_posterior_*) ---------------------------------------------------------------------------- */

/* Bayes' rule for a discrete prior, literally, in double: mean, variance, log evidence and lfsr of one observation. */
static void eb_reference(int n, int d, const double *atoms, const double *logw, double sigma2, const double *y,
    double *mean, double *variance, double *log_evidence, double *lfsr)
{
    double max = -INFINITY, sum = 0, mass = 0, neg = 0, pos = 0;
    double *s = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int j = 0; j < n; j++) {
        double q = 0;
        for (int k = 0; k < d; k++) q += (y[k] - atoms[j * d + k]) * (y[k] - atoms[j * d + k]);
        s[j] = (logw ? logw[j] : 0) - q / (2 * sigma2);
        if (s[j] > max) max = s[j];
        mass += exp(logw ? logw[j] : 0);
    }
    for (int k = 0; k < d; k++) { mean[k] = 0; variance[k] = 0; }
    for (int j = 0; j < n; j++) sum += exp(s[j] - max);
    for (int j = 0; j < n; j++) {
        double w = exp(s[j] - max) / sum;
        for (int k = 0; k < d; k++) { mean[k] += w * atoms[j * d + k]; variance[k] += w * atoms[j * d + k] * atoms[j * d + k]; }
        if (d == 1) { if (atoms[j] <= 0) neg += w; if (atoms[j] >= 0) pos += w; }
    }
    for (int k = 0; k < d; k++) { variance[k] -= mean[k] * mean[k]; if (variance[k] < 0) variance[k] = 0; }
    *log_evidence = max + log(sum) - 0.5 * d * log(2 * 3.14159265358979323846 * sigma2) - log(mass);
    *lfsr = neg < pos ? neg : pos;
    free(s);
}

static void eb_cases(rng_t *rng)
{
    /* MATH.md section 7 (a): atoms {0, 1}, y = 1, sigma^2 = 0.2. */
    double atoms[2] = { 0, 1 }, y = 1, mu, var, lp, lfsr;
    float atomsf[2] = { 0, 1 }, yf = 1, muf, varf, lpf, lfsrf;
    fka_status st = fka_eb_posterior_f64(1, 2, 1, &y, 0, atoms, 0, 0.2, NULL, &mu, 0, &var, 0, &lp, &lfsr);
    expect_near("eb f64 mean (a)", st, mu, 0.924142, 1e-6);
    expect_near("eb f64 variance (a)", st, var, 0.070104, 1e-6);
    expect_near("eb f64 log evidence (a)", st, lp, -0.728477, 1e-6);
    expect_near("eb f64 lfsr (a)", st, lfsr, 0.075858, 1e-6);
    st = fka_eb_posterior_f32(1, 2, 1, &yf, 0, atomsf, 0, 0.2, NULL, &muf, 0, &varf, 0, &lpf, &lfsrf);
    expect_near("eb f32 mean (a)", st, muf, 0.924142, 2e-6);
    expect_near("eb f32 log evidence (a)", st, lpf, -0.728477, 2e-6);

    /* Random cases against the reference: d = 1..3, prior log-weights, pitched observations. */
    for (int trial = 0; trial < 20; trial++) {
        int d = 1 + trial % 3, n = 1 + (int)rng_int(rng, 0, 60), m = 1 + (int)rng_int(rng, 0, 9), pitch = d + trial % 2;
        double *a = malloc(sizeof(double) * (size_t)(n * d)), *w = malloc(sizeof(double) * (size_t)n);
        double *obs = malloc(sizeof(double) * (size_t)(m * pitch)), *mean = malloc(sizeof(double) * (size_t)(m * d));
        double *v = malloc(sizeof(double) * (size_t)(m * d)), *ev = malloc(sizeof(double) * (size_t)m), *ls = malloc(sizeof(double) * (size_t)m);
        for (int i = 0; i < n * d; i++) a[i] = rng_uniform(rng, -2, 2);
        for (int j = 0; j < n; j++) w[j] = rng_uniform(rng, -1, 1);
        for (int i = 0; i < m * pitch; i++) obs[i] = rng_uniform(rng, -2, 2);
        double sigma2 = rng_uniform(rng, 0.1, 2);
        st = fka_eb_posterior_f64(m, n, d, obs, pitch, a, 0, sigma2, w, mean, 0, v, 0, ev, d == 1 ? ls : NULL);
        for (int i = 0; i < m; i++) {
            double rm[3], rv[3], rl, rf;
            eb_reference(n, d, a, w, sigma2, obs + i * pitch, rm, rv, &rl, &rf);
            for (int k = 0; k < d; k++) {
                expect_near("eb f64 random mean", st, mean[i * d + k], rm[k], 1e-10);
                expect_near("eb f64 random variance", st, v[i * d + k], rv[k], 1e-10);
            }
            expect_near("eb f64 random log evidence", st, ev[i], rl, 1e-10 * (1 + fabs(rl)));
            if (d == 1) expect_near("eb f64 random lfsr", st, ls[i], rf, 1e-10);
        }
        free(a); free(w); free(obs); free(mean); free(v); free(ev); free(ls);
    }

    /* Errors: the argument is named, nothing is written. */
    double out = 42;
    expect("eb null mean", fka_eb_posterior_f64(1, 2, 1, &y, 0, atoms, 0, 0.2, NULL, NULL, 0, NULL, 0, NULL, NULL), FKA_ERR_NULL_POINTER, "posterior_mean");
    expect("eb negative atoms", fka_eb_posterior_f64(1, -1, 1, &y, 0, atoms, 0, 0.2, NULL, &out, 0, NULL, 0, NULL, NULL), FKA_ERR_SHAPE, "atom_count");
    expect("eb zero dimension", fka_eb_posterior_f64(1, 2, 0, &y, 0, atoms, 0, 0.2, NULL, &out, 0, NULL, 0, NULL, NULL), FKA_ERR_SHAPE, "dimension");
    expect("eb NaN variance", fka_eb_posterior_f64(1, 2, 1, &y, 0, atoms, 0, NAN, NULL, &out, 0, NULL, 0, NULL, NULL), FKA_ERR_ARGUMENT, "noise_variance");
    double two[4] = { 0, 0, 1, 1 }, y2[2] = { 1, 1 }, mean2[2], lfsr2;
    expect("eb lfsr with d = 2", fka_eb_posterior_f64(1, 2, 2, y2, 0, two, 0, 0.5, NULL, mean2, 0, NULL, 0, NULL, &lfsr2), FKA_ERR_ARGUMENT, "local_false_sign_rate");
    expect("eb output overlaps input", fka_eb_posterior_f64(1, 2, 1, &y, 0, atoms, 0, 0.2, NULL, &atoms[0], 0, NULL, 0, NULL, NULL), FKA_ERR_ARGUMENT, "posterior_mean");
    double bad_weights[2] = { 0, NAN };
    expect("eb NaN prior weight", fka_eb_posterior_f64(1, 2, 1, &y, 0, atoms, 0, 0.2, bad_weights, &out, 0, NULL, 0, NULL, NULL), FKA_ERR_ARGUMENT, "");
    if (out != 42) { failures++; printf("FAIL eb: an output was written on failure\n"); } else passes++;
    expect("eb ok clears the message", fka_eb_posterior_f64(1, 2, 1, &y, 0, atoms, 0, 0.2, NULL, &out, 0, NULL, 0, NULL, NULL), FKA_OK, "");
}

int main(void)
{
    rng_t rng = { UINT64_C(0x5DEECE66D) };
    printf("fka %s, ISA path %d\n", fka_version_string(), fka_active_isa());
    math_examples();
    eb_cases(&rng);
    workspace_size_faults();
    for (int precision = 32; precision <= 64; precision += 32) {
        for (int kind = 0; kind < NW_KIND_COUNT; kind++) {
            int before = failures;
            feature_cases(precision, kind, &rng);
            call_faults(precision, kind);
            printf("f%d %-23s %s\n", precision, nw_kind_name(kind), failures == before ? "ok" : "FAILED");
        }
    }
    printf("estimators: %d checks passed, %d failed; %ld selections outside h0*2^(+-30)\n", passes,
        failures, nw_selection_beyond_range);
    return failures == 0 && nw_selection_beyond_range == 0 ? 0 : 1;
}
