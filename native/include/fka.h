/*
 * fka.h: the C ABI of FastKernelAttention (fused softmax-kernel attention for CPUs).
 *
 * Link against libfastkernelattention.so (Linux), libfastkernelattention.dylib (macOS) or fastkernelattention.dll
 * (Windows), published from native/FastKernelAttention.Native with NativeAOT; no .NET installation is needed at run time.
 *
 * Conventions (every function below):
 *   - Matrices are row-major. A matrix of R rows and W columns with row pitch P (in ELEMENTS, not bytes) has element
 *     (r, c) at ptr[r * P + c]. P = 0 means P = W (tightly packed); otherwise P >= W.
 *   - Sizes are int64_t so that negative values can be rejected; each must be <= INT32_MAX, and so must the products
 *     head_count*head_dim, kv_head_count*head_dim, kv_head_count*value_dim, head_count*value_dim and head_count*query_count.
 *   - A pointer may be NULL only where a function says so, or when its matrix has no elements (zero rows or zero width).
 *   - Every function that can fail returns an fka_status: FKA_OK (0) or an FKA_ERR_* code. Every check runs before any
 *     output is written, so on an error the outputs are untouched.
 *   - No exception, signal or abort ever crosses the boundary for a bad argument that can be detected: NULL pointers,
 *     negative or zero sizes, pitches smaller than widths, overflowing size products, NaN bandwidth, bad options.
 *     The library cannot detect a pointer to a buffer that is too small for the sizes given: that is undefined behaviour,
 *     as with any C API.
 *   - fka_last_error_message() says which argument was wrong and why, for the latest call on the calling thread.
 *
 * Thread safety: every function may be called from many host threads at once, on any thread (the library starts its own
 *   .NET runtime on first use; no initialisation call is needed). Calls share no mutable state: two calls may even read the
 *   same inputs concurrently, but must not write the same output. The last-error message is per thread.
 *   With options.max_threads > 1 (or -1) one call also uses worker threads of its own; the result is bitwise identical
 *   for every thread count.
 *
 * Estimators join this ABI as fka_<estimator>_<verb>_f32/_f64 with the same status codes, the same pitch and size
 * conventions and fka_last_error_message(): Nadaraya-Watson predict, cross-validation score and bandwidth selection
 * (fka_nw_*, below). Their calls run on the calling thread and take no options struct (the managed API has no options);
 * an estimator that gains options will get one (struct_size first), as fka_attention_options.
 *
 * The mathematics (MATH.md section 1-3): for query i of head h, s_ij is the logit of key j, O_i = sum_j softmax_j(s_ij) v_j
 * over the visible keys j, LSE_i = log(e^{s0} + sum_j e^{s_ij}) with the optional sink logit s0.
 *   Dot kernel:      s_ij = scale * q_i . k_j (default scale 1/sqrt(head_dim)).
 *   Gaussian kernel: s_ij = -||q_i - k_j||^2 / (2 h^2) with bandwidth h.
 *   Causal mask (bottom-right aligned): key j is visible to query i iff j <= i + (key_count - query_count).
 *   A row with no visible key gives O_i = 0 and LSE_i = -inf (= s0 with a sink), never NaN.
 */
#ifndef FKA_H
#define FKA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && !defined(FKA_STATIC)
#define FKA_API __declspec(dllimport)
#else
#define FKA_API
#endif

/* The version this header describes; fka_version() returns the library's (major << 16 | minor << 8 | patch). */
#define FKA_VERSION_MAJOR 0
#define FKA_VERSION_MINOR 1
#define FKA_VERSION_PATCH 0
#define FKA_VERSION ((FKA_VERSION_MAJOR << 16) | (FKA_VERSION_MINOR << 8) | FKA_VERSION_PATCH)

/* Status codes. The values are part of the ABI and never change; new codes may be added. */
typedef int32_t fka_status;
#define FKA_OK                0  /* success */
#define FKA_ERR_NULL_POINTER  1  /* a required pointer is NULL (or workspace is NULL with workspace_bytes > 0) */
#define FKA_ERR_SHAPE         2  /* a size is negative, or zero where it must be positive (head_dim, head counts,
                                    dimension, response_count), or too small (sample_count for cross-validation and
                                    selection); a pitch is negative or smaller than its row width; kv_head_count does not
                                    divide head_count; bandwidth_count is neither 1 nor the dimension */
#define FKA_ERR_ARGUMENT      3  /* an invalid option or value: struct_size, kernel, scale, bandwidth (NaN, or not finite
                                    and positive for the Gaussian kernel and every Nadaraya-Watson bandwidth), NaN or +inf
                                    sink logits or sample log-weights, a sink given both ways, max_threads < -1,
                                    reserved != 0, or an output overlapping an input or another output */
#define FKA_ERR_WORKSPACE     4  /* workspace_bytes is negative or smaller than the matching *_workspace_size_* returns */
#define FKA_ERR_OVERFLOW      5  /* a size, pitch or size product exceeds INT32_MAX, or a byte extent overflows int64 */
#define FKA_ERR_OUT_OF_MEMORY 6  /* scratch memory could not be allocated (pass a workspace to avoid any allocation) */
#define FKA_ERR_INTERNAL      99 /* an unexpected failure inside the library: a bug, please report the message */

/* Kernels (fka_attention_options.kernel). */
#define FKA_KERNEL_DOT      0
#define FKA_KERNEL_GAUSSIAN 1

/* Instruction-set paths (fka_active_isa()). */
#define FKA_ISA_SCALAR    0
#define FKA_ISA_VECTOR128 1 /* SSE on x64, AdvSimd on ARM64 */
#define FKA_ISA_AVX2      2 /* AVX2 + FMA3 */
#define FKA_ISA_AVX512    3

/*
 * Options of an attention call, version 1 (48 bytes). fka_attention_options_default() (below), or a zero-initialised
 * struct with struct_size = sizeof(fka_attention_options), is the default call (dot kernel, scale 1/sqrt(head_dim), no mask, no sink, calling thread only).
 * A NULL options
 * pointer means the same. Later versions only append fields; a library accepts a larger struct from a newer header as
 * long as every field it does not know is zero, and rejects struct_size smaller than 48.
 */
typedef struct fka_attention_options {
    uint32_t struct_size;    /* sizeof(fka_attention_options); required */
    int32_t  kernel;         /* FKA_KERNEL_DOT (0) or FKA_KERNEL_GAUSSIAN (1) */
    double   scale;          /* dot kernel: logit scale; 0 or NaN = 1/sqrt(head_dim); otherwise finite and > 0.
                                Gaussian kernel: must be 0 or NaN (its scale is 1/h^2) */
    double   bandwidth;      /* Gaussian kernel: h, finite and > 0. Ignored by the dot kernel, but NaN is always rejected */
    double   sink_logit;     /* attention-sink logit s0 for every head when has_sink_logit != 0: -inf = no sink;
                                NaN and +inf are rejected */
    int32_t  has_sink_logit; /* non-zero: use sink_logit (must be 0 when per-head sink_logits are passed) */
    int32_t  causal;         /* non-zero: bottom-right aligned causal mask */
    int32_t  max_threads;    /* 0 or 1: calling thread only; -1: every processor; k > 1: at most k threads */
    int32_t  reserved;       /* must be 0 */
} fka_attention_options;

/* The default options (struct_size set, everything else 0): start from these and set what you need. */
static inline fka_attention_options fka_attention_options_default(void)
{
    fka_attention_options options;
    options.struct_size = (uint32_t)sizeof(fka_attention_options);
    options.kernel = FKA_KERNEL_DOT;
    options.scale = 0.0;
    options.bandwidth = 0.0;
    options.sink_logit = 0.0;
    options.has_sink_logit = 0;
    options.causal = 0;
    options.max_threads = 0;
    options.reserved = 0;
    return options;
}

/* ---- Queries (cannot fail) ------------------------------------------------------------------------------------------ */

/* The library version, (major << 16) | (minor << 8) | patch. Compare the major and minor with FKA_VERSION_MAJOR/MINOR. */
FKA_API uint32_t fka_version(void);

/* The library's informational version ("0.1.0", possibly with "+<commit>"): a static NUL-terminated UTF-8 string. */
FKA_API const char *fka_version_string(void);

/* The instruction-set path every call uses (FKA_ISA_*), chosen once from the hardware and the FKA_FORCE_ISA environment
 * variable (Avx512, Avx2, Vector128 or Scalar; a path the CPU lacks falls back to the best it has). */
FKA_API int32_t fka_active_isa(void);

/* A NUL-terminated UTF-8 message about the latest fka_* call made on the calling thread: which argument was wrong and why,
 * or "" when that call succeeded. Per thread; valid until the thread's next fka_* call or its exit. Never NULL. */
FKA_API const char *fka_last_error_message(void);

/* The name of a status code ("FKA_OK", "FKA_ERR_SHAPE", ...; "FKA_ERR_UNKNOWN" for other values): a static string. */
FKA_API const char *fka_status_string(fka_status status);

/* ---- Attention forward ----------------------------------------------------------------------------------------------
 *
 * Single head (m = query_count, n = key_count, d = head_dim, dv = value_dim):
 *   query  m x d  (pitch query_pitch),   key    n x d  (pitch key_pitch),
 *   value  n x dv (pitch value_pitch),   output m x dv (pitch output_pitch, written),
 *   log_sum_exp: NULL (not computed) or m elements (written).
 * Sizes: m >= 0 (0 is a no-op), n >= 0 (0: every row is empty, O = 0), d >= 1, dv >= 0 (0: LSE-only call, value and
 * output may be NULL). Outputs must not overlap any input or each other (FKA_ERR_ARGUMENT).
 * options: NULL for the defaults, see fka_attention_options.
 *
 * Checks run in this order, and the first failure is returned: sizes (SHAPE, OVERFLOW), widths and the LSE length
 * (OVERFLOW), then query, key, value, output each: pitch (SHAPE, OVERFLOW), byte extent (OVERFLOW), pointer
 * (NULL_POINTER); workspace_bytes (WORKSPACE) and workspace (NULL_POINTER); options (ARGUMENT); the remaining checks of
 * the managed library (overlap, sink values: ARGUMENT; workspace size: WORKSPACE).
 *
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT, FKA_ERR_OVERFLOW, FKA_ERR_OUT_OF_MEMORY
 * (large head_dim without a workspace) or FKA_ERR_INTERNAL. */
FKA_API fka_status fka_attention_forward_f32(
    int64_t query_count, int64_t key_count, int64_t head_dim, int64_t value_dim,
    const float *query, int64_t query_pitch,
    const float *key, int64_t key_pitch,
    const float *value, int64_t value_pitch,
    float *output, int64_t output_pitch,
    float *log_sum_exp,
    const fka_attention_options *options);

/* fka_attention_forward_f32 in double precision. */
FKA_API fka_status fka_attention_forward_f64(
    int64_t query_count, int64_t key_count, int64_t head_dim, int64_t value_dim,
    const double *query, int64_t query_pitch,
    const double *key, int64_t key_pitch,
    const double *value, int64_t value_pitch,
    double *output, int64_t output_pitch,
    double *log_sum_exp,
    const fka_attention_options *options);

/* fka_attention_forward_f32 with caller-owned scratch memory: workspace (any alignment) of workspace_bytes >=
 * fka_workspace_size_f32(head_dim, value_dim, key_count, 1, 1, options). With it the call allocates nothing.
 * Additionally returns FKA_ERR_WORKSPACE (too small or negative) and FKA_ERR_NULL_POINTER (NULL with workspace_bytes > 0). */
FKA_API fka_status fka_attention_forward_ws_f32(
    int64_t query_count, int64_t key_count, int64_t head_dim, int64_t value_dim,
    const float *query, int64_t query_pitch,
    const float *key, int64_t key_pitch,
    const float *value, int64_t value_pitch,
    float *output, int64_t output_pitch,
    float *log_sum_exp,
    const fka_attention_options *options,
    void *workspace, int64_t workspace_bytes);

/* fka_attention_forward_ws_f32 in double precision (size from fka_workspace_size_f64). */
FKA_API fka_status fka_attention_forward_ws_f64(
    int64_t query_count, int64_t key_count, int64_t head_dim, int64_t value_dim,
    const double *query, int64_t query_pitch,
    const double *key, int64_t key_pitch,
    const double *value, int64_t value_pitch,
    double *output, int64_t output_pitch,
    double *log_sum_exp,
    const fka_attention_options *options,
    void *workspace, int64_t workspace_bytes);

/*
 * Multi-head, grouped-query (GQA) and multi-query attention over token-major tensors (H = head_count, Hkv = kv_head_count,
 * H % Hkv == 0, G = H / Hkv):
 *   query  m x (H*d),    head h of token i is columns [h*d, (h+1)*d) of row i
 *   key    n x (Hkv*d),  query head h reads kv head h / G
 *   value  n x (Hkv*dv)
 *   output m x (H*dv)    (written)
 *   log_sum_exp: NULL or H*m elements laid out [H x m]: head h, query i at h*m + i (written)
 *   sink_logits: NULL or H elements, one sink logit per head (-inf: none for that head; NaN/+inf rejected);
 *                must be NULL when options->has_sink_logit is set.
 * Everything else as fka_attention_forward_f32, whose error codes apply; additionally FKA_ERR_SHAPE for H < 1, Hkv < 1
 * or Hkv not dividing H.
 */
FKA_API fka_status fka_attention_forward_multihead_f32(
    int64_t query_count, int64_t key_count, int64_t head_count, int64_t kv_head_count,
    int64_t head_dim, int64_t value_dim,
    const float *query, int64_t query_pitch,
    const float *key, int64_t key_pitch,
    const float *value, int64_t value_pitch,
    float *output, int64_t output_pitch,
    float *log_sum_exp, const float *sink_logits,
    const fka_attention_options *options);

/* fka_attention_forward_multihead_f32 in double precision. */
FKA_API fka_status fka_attention_forward_multihead_f64(
    int64_t query_count, int64_t key_count, int64_t head_count, int64_t kv_head_count,
    int64_t head_dim, int64_t value_dim,
    const double *query, int64_t query_pitch,
    const double *key, int64_t key_pitch,
    const double *value, int64_t value_pitch,
    double *output, int64_t output_pitch,
    double *log_sum_exp, const double *sink_logits,
    const fka_attention_options *options);

/* fka_attention_forward_multihead_f32 with a caller-owned workspace of at least
 * fka_workspace_size_f32(head_dim, value_dim, key_count, head_count, kv_head_count, options) bytes. */
FKA_API fka_status fka_attention_forward_multihead_ws_f32(
    int64_t query_count, int64_t key_count, int64_t head_count, int64_t kv_head_count,
    int64_t head_dim, int64_t value_dim,
    const float *query, int64_t query_pitch,
    const float *key, int64_t key_pitch,
    const float *value, int64_t value_pitch,
    float *output, int64_t output_pitch,
    float *log_sum_exp, const float *sink_logits,
    const fka_attention_options *options,
    void *workspace, int64_t workspace_bytes);

/* fka_attention_forward_multihead_ws_f32 in double precision (size from fka_workspace_size_f64). */
FKA_API fka_status fka_attention_forward_multihead_ws_f64(
    int64_t query_count, int64_t key_count, int64_t head_count, int64_t kv_head_count,
    int64_t head_dim, int64_t value_dim,
    const double *query, int64_t query_pitch,
    const double *key, int64_t key_pitch,
    const double *value, int64_t value_pitch,
    double *output, int64_t output_pitch,
    double *log_sum_exp, const double *sink_logits,
    const fka_attention_options *options,
    void *workspace, int64_t workspace_bytes);

/* ---- Workspace size -------------------------------------------------------------------------------------------------
 * Writes to *bytes the workspace a *_ws_f32 / *_ws_f64 call with these sizes and options needs (63 bytes of alignment
 * slack included; independent of query_count; key_count matters for the Gaussian kernel only). Pass the options of the
 * call: the kernel and max_threads change the size (-1 resolves to this machine's processor count).
 * Sizes: head_dim >= 1, value_dim >= 0, key_count >= 0, head_count >= 1, kv_head_count >= 1 dividing head_count
 * (1, 1 for the single-head calls). bytes must not be NULL; *bytes is 0 on failure.
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT (options) or FKA_ERR_OVERFLOW (a size above
 * INT32_MAX, or more than 2 GiB of workspace). */
FKA_API fka_status fka_workspace_size_f32(int64_t head_dim, int64_t value_dim, int64_t key_count,
    int64_t head_count, int64_t kv_head_count, const fka_attention_options *options, int64_t *bytes);

/* fka_workspace_size_f32 for the double-precision calls. */
FKA_API fka_status fka_workspace_size_f64(int64_t head_dim, int64_t value_dim, int64_t key_count,
    int64_t head_count, int64_t kv_head_count, const fka_attention_options *options, int64_t *bytes);

/* ---- Nadaraya-Watson regression (MATH.md section 6) ------------------------------------------------------------------
 *
 * g(x_i) = sum_j w_ij Y_j with w_ij = softmax_j( -sum_k (x_ik - X_jk)^2 / (2 h_k^2) + log pi_j ): Gaussian-kernel attention
 * with the queries x, keys X and values Y (m = query_count, n = sample_count, d = dimension, p = response_count):
 *   queries   m x d (pitch queries_pitch),     samples   n x d (pitch samples_pitch),
 *   responses n x p (pitch responses_pitch),   output  m x p (pitch output_pitch, written),
 *   bandwidths: bandwidth_count = 1 (one h for every dimension) or d (h_k per dimension) values, each finite and > 0.
 *   sample_log_weights: NULL (every pi_j = 1) or n values log pi_j added to the logits; -inf drops sample j, NaN and +inf
 *     are rejected.
 * Optional diagnostics from the same fused pass (NULL: not computed; otherwise written):
 *   log_sum_exp           m values: LSE_i = log sum_j pi_j exp(-sum_k (x_ik - X_jk)^2 / (2 h_k^2)), the true value;
 *   effective_sample_size m values: ESS_i = 1 / sum_j w_ij^2 in [1, n] (one more LSE-only pass);
 *   entropy               m values: H_i = -sum_j w_ij log w_ij;
 *   local_variance        m x p (pitch local_variance_pitch; ignored when NULL): sum_j w_ij Y_jc^2 - g_ic^2, clamped >= 0.
 * A row with no visible sample (n = 0, or every pi_j = 0) gives g = 0, LSE = -inf, ESS = 0, H = 0, variance 0. A NaN in a
 * query row makes only that row NaN.
 * Sizes: m >= 0 (0 is a no-op), n >= 0, d >= 1, p >= 1; bandwidth_count 1 or d (else FKA_ERR_SHAPE). No output may
 * overlap an input or another output (FKA_ERR_ARGUMENT).
 *
 * Checks run in this order, and the first failure is returned: sizes (SHAPE, OVERFLOW) and bandwidth_count (SHAPE), then
 * queries, samples, responses, output, local_variance (when not NULL) each: pitch (SHAPE, OVERFLOW), byte extent
 * (OVERFLOW), pointer (NULL_POINTER); bandwidths (NULL_POINTER); workspace_bytes (WORKSPACE) and workspace
 * (NULL_POINTER); overlaps (ARGUMENT); the workspace size (WORKSPACE: below what fka_nw_predict_workspace_size_* returns
 * for these sizes and these NULL / non-NULL optional arguments); the values of bandwidths and sample_log_weights
 * (ARGUMENT).
 *
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT, FKA_ERR_OVERFLOW, FKA_ERR_OUT_OF_MEMORY (its
 * scratch memory comes from the C heap; pass a workspace to avoid that) or FKA_ERR_INTERNAL. */
FKA_API fka_status fka_nw_predict_f32(
    int64_t query_count, int64_t sample_count, int64_t dimension, int64_t response_count,
    const float *queries, int64_t queries_pitch,
    const float *samples, int64_t samples_pitch,
    const float *responses, int64_t responses_pitch,
    const float *bandwidths, int64_t bandwidth_count,
    const float *sample_log_weights,
    float *output, int64_t output_pitch,
    float *log_sum_exp, float *effective_sample_size, float *entropy,
    float *local_variance, int64_t local_variance_pitch);

/* fka_nw_predict_f32 in double precision. */
FKA_API fka_status fka_nw_predict_f64(
    int64_t query_count, int64_t sample_count, int64_t dimension, int64_t response_count,
    const double *queries, int64_t queries_pitch,
    const double *samples, int64_t samples_pitch,
    const double *responses, int64_t responses_pitch,
    const double *bandwidths, int64_t bandwidth_count,
    const double *sample_log_weights,
    double *output, int64_t output_pitch,
    double *log_sum_exp, double *effective_sample_size, double *entropy,
    double *local_variance, int64_t local_variance_pitch);

/* fka_nw_predict_f32 with caller-owned scratch memory: workspace (any alignment, not overlapping any argument) of
 * workspace_bytes >= fka_nw_predict_workspace_size_f32(query_count, sample_count, dimension, response_count,
 * bandwidth_count, sample_log_weights != NULL, effective_sample_size != NULL, entropy != NULL, local_variance != NULL).
 * With it the call allocates nothing. Additionally returns FKA_ERR_WORKSPACE (too small or negative) and
 * FKA_ERR_NULL_POINTER (NULL with workspace_bytes > 0). */
FKA_API fka_status fka_nw_predict_ws_f32(
    int64_t query_count, int64_t sample_count, int64_t dimension, int64_t response_count,
    const float *queries, int64_t queries_pitch,
    const float *samples, int64_t samples_pitch,
    const float *responses, int64_t responses_pitch,
    const float *bandwidths, int64_t bandwidth_count,
    const float *sample_log_weights,
    float *output, int64_t output_pitch,
    float *log_sum_exp, float *effective_sample_size, float *entropy,
    float *local_variance, int64_t local_variance_pitch,
    void *workspace, int64_t workspace_bytes);

/* fka_nw_predict_ws_f32 in double precision (size from fka_nw_predict_workspace_size_f64). */
FKA_API fka_status fka_nw_predict_ws_f64(
    int64_t query_count, int64_t sample_count, int64_t dimension, int64_t response_count,
    const double *queries, int64_t queries_pitch,
    const double *samples, int64_t samples_pitch,
    const double *responses, int64_t responses_pitch,
    const double *bandwidths, int64_t bandwidth_count,
    const double *sample_log_weights,
    double *output, int64_t output_pitch,
    double *log_sum_exp, double *effective_sample_size, double *entropy,
    double *local_variance, int64_t local_variance_pitch,
    void *workspace, int64_t workspace_bytes);

/* Writes to *bytes the workspace of a fka_nw_predict_ws_f32 call with these sizes; the four flags (non-zero = yes) say
 * whether sample log-weights are passed and which of ESS, entropy and local variance are wanted. Sizes as
 * fka_nw_predict_f32. bytes must not be NULL; *bytes is 0 on failure.
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE or FKA_ERR_OVERFLOW (a size above INT32_MAX, or more than 2 GiB). */
FKA_API fka_status fka_nw_predict_workspace_size_f32(int64_t query_count, int64_t sample_count, int64_t dimension,
    int64_t response_count, int64_t bandwidth_count, int32_t weighted, int32_t effective_sample_size, int32_t entropy,
    int32_t local_variance, int64_t *bytes);

/* fka_nw_predict_workspace_size_f32 for fka_nw_predict_ws_f64. */
FKA_API fka_status fka_nw_predict_workspace_size_f64(int64_t query_count, int64_t sample_count, int64_t dimension,
    int64_t response_count, int64_t bandwidth_count, int32_t weighted, int32_t effective_sample_size, int32_t entropy,
    int32_t local_variance, int64_t *bytes);

/* Leave-one-out least-squares cross-validation score, written to *score (a double for both precisions):
 *   CV(h) = (1/n) sum_i sum_c (Y_ic - g_-i(X_i)_c)^2,
 * where g_-i is the estimate from every sample but i (self-attention with the diagonal masked, one fused pass, summed in
 * double). samples n x d, responses n x p, bandwidths as fka_nw_predict_f32. Sizes: n >= 1, d >= 1, p >= 1. n = 1, or NaN
 * in the data, gives *score = NaN (and FKA_OK). score must not be NULL nor overlap an input; it is written only on success.
 * Checks: sizes (SHAPE, OVERFLOW), samples and responses (pitch, extent, pointer), bandwidths (NULL_POINTER), score
 * (NULL_POINTER), workspace (ws variant: WORKSPACE, NULL_POINTER), overlaps (ARGUMENT), workspace size (WORKSPACE),
 * bandwidth values (ARGUMENT).
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT, FKA_ERR_OVERFLOW, FKA_ERR_OUT_OF_MEMORY or
 * FKA_ERR_INTERNAL. */
FKA_API fka_status fka_nw_cross_validation_f32(int64_t sample_count, int64_t dimension, int64_t response_count,
    const float *samples, int64_t samples_pitch, const float *responses, int64_t responses_pitch,
    const float *bandwidths, int64_t bandwidth_count, double *score);

/* fka_nw_cross_validation_f32 in double precision. */
FKA_API fka_status fka_nw_cross_validation_f64(int64_t sample_count, int64_t dimension, int64_t response_count,
    const double *samples, int64_t samples_pitch, const double *responses, int64_t responses_pitch,
    const double *bandwidths, int64_t bandwidth_count, double *score);

/* fka_nw_cross_validation_f32 with a caller workspace of at least fka_nw_cross_validation_workspace_size_f32(sample_count,
 * dimension, response_count, bandwidth_count) bytes: the call allocates nothing. Additionally FKA_ERR_WORKSPACE and
 * FKA_ERR_NULL_POINTER (NULL workspace with workspace_bytes > 0). */
FKA_API fka_status fka_nw_cross_validation_ws_f32(int64_t sample_count, int64_t dimension, int64_t response_count,
    const float *samples, int64_t samples_pitch, const float *responses, int64_t responses_pitch,
    const float *bandwidths, int64_t bandwidth_count, double *score, void *workspace, int64_t workspace_bytes);

/* fka_nw_cross_validation_ws_f32 in double precision (size from fka_nw_cross_validation_workspace_size_f64). */
FKA_API fka_status fka_nw_cross_validation_ws_f64(int64_t sample_count, int64_t dimension, int64_t response_count,
    const double *samples, int64_t samples_pitch, const double *responses, int64_t responses_pitch,
    const double *bandwidths, int64_t bandwidth_count, double *score, void *workspace, int64_t workspace_bytes);

/* Writes to *bytes the workspace of fka_nw_cross_validation_ws_f32 (sample_count >= 0 here). bytes must not be NULL;
 * *bytes is 0 on failure. Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE or FKA_ERR_OVERFLOW. */
FKA_API fka_status fka_nw_cross_validation_workspace_size_f32(int64_t sample_count, int64_t dimension,
    int64_t response_count, int64_t bandwidth_count, int64_t *bytes);

/* fka_nw_cross_validation_workspace_size_f32 for fka_nw_cross_validation_ws_f64. */
FKA_API fka_status fka_nw_cross_validation_workspace_size_f64(int64_t sample_count, int64_t dimension,
    int64_t response_count, int64_t bandwidth_count, int64_t *bytes);

/* Least-squares leave-one-out bandwidth selection: minimises CV (above) over one common bandwidth (bandwidth_count = 1) or
 * one per dimension (bandwidth_count = d) and writes the selected bandwidths to bandwidths (its input values are not
 * read) and CV at them, as stored in float / double, to *cv (NULL: not wanted). The search starts from the normal-reference
 * rule h0_k = 1.06 sigma_k n^(-1/(d+4)), evaluates the grid h0 2^(k/2), k = -6..6, refines by Brent's method in log h and,
 * per dimension, continues by BFGS with the exact gradient (coordinate search past 1024 gradient columns); the minimum
 * is local. Constant responses give CV = 0 and the start; NaN in the data gives the start and CV = NaN (FKA_OK).
 * Sizes: n >= 2, d >= 1, p >= 1. Outputs are written only on success and must not overlap the inputs (FKA_ERR_ARGUMENT).
 * Scratch memory comes from the C heap (there is no workspace variant).
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT, FKA_ERR_OVERFLOW (more than 2 GiB of search
 * memory), FKA_ERR_OUT_OF_MEMORY or FKA_ERR_INTERNAL. */
FKA_API fka_status fka_nw_select_bandwidth_f32(int64_t sample_count, int64_t dimension, int64_t response_count,
    const float *samples, int64_t samples_pitch, const float *responses, int64_t responses_pitch,
    float *bandwidths, int64_t bandwidth_count, double *cv);

/* fka_nw_select_bandwidth_f32 in double precision. */
FKA_API fka_status fka_nw_select_bandwidth_f64(int64_t sample_count, int64_t dimension, int64_t response_count,
    const double *samples, int64_t samples_pitch, const double *responses, int64_t responses_pitch,
    double *bandwidths, int64_t bandwidth_count, double *cv);

/* ---- Empirical-Bayes posterior (MATH.md section 7) ----------------------------------------------------------------
 * Model y = x + sigma*eps, eps ~ N(0, I_d), prior mass pi_j on atoms x_j (row-major, pitches in elements; 0 = packed).
 * Posterior weights w_ij ∝ pi_j exp(-|y_i - x_j|^2 / (2 sigma^2)) from one fused Gaussian attention pass; outputs:
 *   posterior_mean      m x d  (required)         mu_i = sum_j w_ij x_j
 *   posterior_variance  m x d  (NULL: skipped)     sum_j w_ij x_jk^2 - mu_ik^2 (about the atom mean, clamped >= 0)
 *   log_evidence        m      (NULL: skipped)     log p(y_i) = LSE_i - (d/2) log(2 pi sigma^2) - log sum_j pi_j (nats)
 *   local_false_sign_rate m    (NULL: skipped; d = 1 only) min(sum_{x_j<=0} w_ij, sum_{x_j>=0} w_ij)
 * prior_log_weights: NULL (pi_j = 1) or n values log pi_j (-inf drops an atom; NaN/+inf: FKA_ERR_ARGUMENT).
 * No atoms: mu = 0, variance 0, log p = -inf, lfsr = 0. A NaN observation makes only its row NaN. noise_variance must be
 * finite and > 0 (FKA_ERR_ARGUMENT). Outputs must not overlap inputs or each other (FKA_ERR_ARGUMENT); nothing is written
 * on failure. Scratch memory comes from the C heap.
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT, FKA_ERR_OVERFLOW, FKA_ERR_OUT_OF_MEMORY or
 * FKA_ERR_INTERNAL. */
FKA_API fka_status fka_eb_posterior_f32(int64_t observation_count, int64_t atom_count, int64_t dimension,
    const float *observations, int64_t observations_pitch, const float *atoms, int64_t atoms_pitch, double noise_variance,
    const float *prior_log_weights, float *posterior_mean, int64_t posterior_mean_pitch, float *posterior_variance,
    int64_t posterior_variance_pitch, float *log_evidence, float *local_false_sign_rate);

/* fka_eb_posterior_f32 in double precision. */
FKA_API fka_status fka_eb_posterior_f64(int64_t observation_count, int64_t atom_count, int64_t dimension,
    const double *observations, int64_t observations_pitch, const double *atoms, int64_t atoms_pitch, double noise_variance,
    const double *prior_log_weights, double *posterior_mean, int64_t posterior_mean_pitch, double *posterior_variance,
    int64_t posterior_variance_pitch, double *log_evidence, double *local_false_sign_rate);

/* ---- Particle dynamics and the two-stage denoiser (MATH.md sections 8 and 11) --------------------------------------
 * fka_particle_flow_run: step_count synchronous Euler steps of self-attention particle flow, in place,
 *   x_i <- x_i + dt (m_h(x_i) - x_i),  m_h(x_i) = sum_j softmax_j(-|x_i - x_j|^2 / (2 h^2)) x_j  (every particle, x_i
 *   included, is a key and a value; all particles of a step move under the same configuration). With sub_steps K > 1 each
 *   step is K sub-steps of dt/K, each re-evaluating m_h; blend beta in [0, 1] returns beta (x + dt (m_h(x) - x)) +
 *   (1 - beta) x_K (0: the plain K-sub-step result). Monitors, per step, each NULL or step_count doubles:
 *   mean_squared_step[l] = (1/n) sum_i |x_i(l+1) - x_i(l)|^2 and energy[l] = (1/n) sum_i LSE_i(l) - log n.
 *   particles: n x d row-major (pitch in elements, 0 = packed). Sizes n >= 0 (n = 0: monitors NaN), d >= 1,
 *   step_count >= 0, sub_steps >= 1; bandwidth and step_size finite and > 0 (FKA_ERR_ARGUMENT).
 * fka_two_stage_denoise: Stage 1 refines a copy of the noisy tokens by step_count particle-flow steps (bandwidth, step
 *   size, sub-steps, blend as above); Stage 2 writes the empirical-Bayes posterior mean with the ORIGINAL noisy tokens
 *   as queries and the refined particles as atoms: out_i = sum_j w_ij p_j, w_ij ∝ exp(-|y_i - p_j|^2 / (2 sigma^2)).
 *   refined_particles: NULL or n x d, receives the Stage-1 particles. noise_variance finite and > 0.
 * fka_two_stage_rule_horizon: the depth-noise rule T* = sigma^2 / (2 h^2) + (1/2) ln(1 + sigma^2 / tau^2) (prior_variance
 *   tau^2 > 0; INFINITY drops the second term); use step_count = round(T* / step_size).
 * Outputs must not overlap the inputs or each other (FKA_ERR_ARGUMENT). Scratch memory comes from the C heap.
 * Returns FKA_OK, FKA_ERR_NULL_POINTER, FKA_ERR_SHAPE, FKA_ERR_ARGUMENT, FKA_ERR_OVERFLOW, FKA_ERR_OUT_OF_MEMORY or
 * FKA_ERR_INTERNAL. */
FKA_API fka_status fka_particle_flow_run_f32(int64_t particle_count, int64_t dimension, float *particles,
    int64_t particles_pitch, double bandwidth, double step_size, int64_t step_count, int64_t sub_steps, double blend,
    double *mean_squared_step, double *energy);

/* fka_particle_flow_run_f32 in double precision. */
FKA_API fka_status fka_particle_flow_run_f64(int64_t particle_count, int64_t dimension, double *particles,
    int64_t particles_pitch, double bandwidth, double step_size, int64_t step_count, int64_t sub_steps, double blend,
    double *mean_squared_step, double *energy);

FKA_API fka_status fka_two_stage_denoise_f32(int64_t token_count, int64_t dimension, const float *noisy,
    int64_t noisy_pitch, double noise_variance, double bandwidth, double step_size, int64_t step_count, int64_t sub_steps,
    double blend, float *output, int64_t output_pitch, float *refined_particles, int64_t refined_particles_pitch);

/* fka_two_stage_denoise_f32 in double precision. */
FKA_API fka_status fka_two_stage_denoise_f64(int64_t token_count, int64_t dimension, const double *noisy,
    int64_t noisy_pitch, double noise_variance, double bandwidth, double step_size, int64_t step_count, int64_t sub_steps,
    double blend, double *output, int64_t output_pitch, double *refined_particles, int64_t refined_particles_pitch);

FKA_API fka_status fka_two_stage_rule_horizon(double noise_variance, double bandwidth, double prior_variance,
    double *horizon);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FKA_H */
