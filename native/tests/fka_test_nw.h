/* Shared helpers of the estimator tests: a naive double Nadaraya-Watson reference (MATH.md section 6), random cases, and
 * a dispatcher over every fka_nw_* export. */
#ifndef FKA_TEST_NW_H
#define FKA_TEST_NW_H

#include <stddef.h>
#include <stdint.h>

#include "fka_test.h"

#define NW_MAX_D 16

/* Which export a call goes to. */
enum { NW_PREDICT = 0, NW_PREDICT_WS = 1, NW_CV = 2, NW_CV_WS = 3, NW_SELECT = 4, NW_KIND_COUNT = 5 };

/* A valid call described by its sizes; pads are extra elements per row (-1: pass pitch 0 = tight). */
typedef struct {
    int precision; /* 32 or 64 */
    int kind;      /* NW_* */
    int64_t m, n, d, p, bandwidth_count;
    int64_t query_pad, sample_pad, response_pad, output_pad, variance_pad;
    double bandwidths[NW_MAX_D]; /* predict and cross-validation; selection writes them */
    int weighted;                /* predict: sample log-weights (some -inf) */
    int want_lse, want_ess, want_entropy, want_variance;
    int want_score;              /* selection: pass the cv pointer */
    int64_t workspace_extra;     /* bytes beyond the required size */
    int workspace_misalign;      /* offset the workspace pointer by this many bytes */
} nw_case_t;

/* The raw arguments of one export call: what the fuzz test mutates. Pointers are to float or double. */
typedef struct {
    int precision, kind;
    int64_t m, n, d, p, bandwidth_count;
    void *queries, *samples, *responses, *bandwidths, *log_weights, *output, *lse, *ess, *entropy, *variance;
    int64_t queries_pitch, samples_pitch, responses_pitch, output_pitch, variance_pitch;
    double *score;
    void *workspace;
    int64_t workspace_bytes;
} nw_call_t;

/* Buffers of a prepared case; free with nw_case_free. Vectors have one canary element past their length. */
typedef struct {
    nw_call_t call;
    void *queries, *samples, *responses, *bandwidths, *log_weights, *output, *lse, *ess, *entropy, *variance;
    double *score; /* 2 doubles: the score and a canary */
    void *workspace_block;
    size_t queries_len, samples_len, responses_len, output_len, variance_len, vector_len, bandwidths_len, weights_len;
    int64_t workspace_required;
} nw_prepared_t;

const char *nw_kind_name(int kind);

/* A random valid case with small sizes. */
nw_case_t nw_random_case(rng_t *rng, int precision, int kind);

/* Allocates and fills the buffers (input padding NaN, output padding a sentinel) and the call. Returns 0, or the status
 * of a failed workspace size query. */
int nw_case_prepare(const nw_case_t *c, rng_t *rng, nw_prepared_t *p);
void nw_case_free(nw_prepared_t *p);

/* Calls the export named by call->precision and call->kind. */
fka_status nw_invoke(const nw_call_t *call);

/* A hash of every buffer a call may write (outputs, diagnostics, score, bandwidths of a selection): equal before and after
 * a failed call. */
uint64_t nw_output_hash(const nw_prepared_t *p);

/* Compares a successful call with the double reference; padding and canaries must be untouched. Returns 0 when it
 * matches, else writes a reason into why and returns 1. */
int nw_case_check(const nw_case_t *c, const nw_prepared_t *p, char *why, size_t why_len);

/* Selections whose bandwidths fall outside h0 * 2^(+-30) (h0 the normal-reference start), the range the managed search
 * documents. The per-dimension search can leave it (a dimension that does not matter drifts towards h = infinity; in float
 * it reaches +inf, which fka_nw_predict and fka_nw_cross_validation then reject): counted and reported, not failed,
 * until the managed search keeps to its range. Single-threaded callers only. */
extern long nw_selection_beyond_range;

/* prepare + invoke + check; returns 0 on success. */
int nw_run_case(const nw_case_t *c, rng_t *rng, char *why, size_t why_len);

void nw_case_describe(const nw_case_t *c, char *buffer, size_t length);

/* The naive double reference: g = sum_j w_j Y_j, w_j = softmax_j(-sum_k (x_k - X_jk)^2 / (2 h_k^2) + log pi_j), with the
 * diagnostics (each may be NULL). h has bandwidth_count (1 or d) values; log_weights may be NULL. Pitches in elements. */
void nw_reference_predict(int64_t m, int64_t n, int64_t d, int64_t p, const double *q, int64_t qp, const double *x,
    int64_t xp, const double *y, int64_t yp, const double *h, int64_t bandwidth_count, const double *log_weights,
    double *out, int64_t op, double *lse, double *ess, double *entropy, double *variance, int64_t vp);

/* Leave-one-out CV(h) = (1/n) sum_i ||Y_i - g_-i(X_i)||^2 (NaN for n < 2). */
double nw_reference_cv(int64_t n, int64_t d, int64_t p, const double *x, int64_t xp, const double *y, int64_t yp,
    const double *h, int64_t bandwidth_count);

/* The normal-reference start h_k = 1.06 sigma_k n^(-1/(d+4)) (population sigma; for one bandwidth the RMS of the
 * sigma_k); writes bandwidth_count values. */
void nw_normal_reference(int64_t n, int64_t d, const double *x, int64_t xp, int64_t bandwidth_count, double *h);

#endif
