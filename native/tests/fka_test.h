/* Shared helpers of the C tests: a naive double reference, random cases, and a dispatcher over every forward export. */
#ifndef FKA_TEST_H
#define FKA_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "fka.h"

#define FKA_TEST_MAX_HEADS 8

/* Which export a call goes to. */
enum { VARIANT_SINGLE = 0, VARIANT_SINGLE_WS = 1, VARIANT_MULTI = 2, VARIANT_MULTI_WS = 3, VARIANT_COUNT = 4 };

/* Per-call random source (xorshift64*): no global state, so threads can each own one. */
typedef struct { uint64_t state; } rng_t;
uint64_t rng_next(rng_t *rng);
double rng_uniform(rng_t *rng, double lo, double hi); /* [lo, hi) */
int64_t rng_int(rng_t *rng, int64_t lo, int64_t hi);  /* [lo, hi] */

/* A valid call described by its sizes and options; pads are extra elements per row (-1: pass pitch 0 = tight). */
typedef struct {
    int precision; /* 32 or 64 */
    int variant;   /* VARIANT_* (SINGLE* need head_count = kv_head_count = 1 and no per-head sinks) */
    int64_t m, n, heads, kv_heads, d, dv;
    int64_t query_pad, key_pad, value_pad, output_pad;
    fka_attention_options options;
    int pass_options;   /* 0: pass NULL (then options must be the defaults) */
    int want_lse;
    int use_head_sinks; /* multi-head only */
    double head_sinks[FKA_TEST_MAX_HEADS];
    int64_t workspace_extra; /* bytes beyond the required size */
    int workspace_misalign;  /* offset the workspace pointer by this many bytes */
} case_t;

/* The raw arguments of one export call: what the fuzz test mutates. Pointers are to float or double. */
typedef struct {
    int precision, variant;
    int64_t m, n, heads, kv_heads, d, dv;
    void *query, *key, *value, *output, *lse, *sinks;
    int64_t query_pitch, key_pitch, value_pitch, output_pitch;
    const fka_attention_options *options;
    void *workspace;
    int64_t workspace_bytes;
} call_t;

/* Buffers of a prepared case; free with case_free. */
typedef struct {
    call_t call;
    fka_attention_options options_copy;
    void *query, *key, *value, *output, *lse, *sinks, *workspace_block;
    size_t query_len, key_len, value_len, output_len, lse_len; /* elements allocated */
    int64_t workspace_required;
} prepared_t;

/* A random valid case with small sizes. */
case_t random_case(rng_t *rng, int precision, int variant);

/* Allocates and fills the buffers (padding of inputs is NaN, padding of the output a sentinel) and the call.
 * Returns 0, or an fka_status if the workspace size query failed. */
int case_prepare(const case_t *c, rng_t *rng, prepared_t *p);
void case_free(prepared_t *p);

/* Calls the export named by call->precision and call->variant. */
fka_status invoke(const call_t *call);

/* Compares a successful call with the double reference; padding and canaries must be untouched. Returns 0 when it
 * matches, else writes a reason into why (size why_len) and returns 1. */
int case_check(const case_t *c, const prepared_t *p, char *why, size_t why_len);

/* prepare + invoke + check; returns 0 on success. */
int run_case(const case_t *c, rng_t *rng, char *why, size_t why_len);

/* A one-line description of a case, for failure messages. */
void case_describe(const case_t *c, char *buffer, size_t length);

/* The naive reference in double (MATH.md sections 1-3): token-major multi-head layout, pitches in elements, NULL lse
 * and sinks allowed. scale <= 0 or NaN means 1/sqrt(d). */
void reference_attention(int64_t m, int64_t n, int64_t heads, int64_t kv_heads, int64_t d, int64_t dv,
    const double *q, int64_t qp, const double *k, int64_t kp, const double *v, int64_t vp,
    double *o, int64_t op, double *lse, const double *sinks, int kernel, double scale, double bandwidth, int causal);

const char *variant_name(int variant);

#endif
