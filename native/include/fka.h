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
 * Estimators (Nadaraya-Watson predict and bandwidth selection, posterior mean/variance, particle step) will join this ABI
 * as fka_<estimator>_<verb>_f32/_f64 with their own fka_<estimator>_options struct (struct_size first); they will use the
 * same status codes, the same pitch and size conventions and fka_last_error_message().
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
#define FKA_ERR_SHAPE         2  /* a size is negative, or zero where it must be positive (head_dim, head counts); a pitch
                                    is negative or smaller than its row width; kv_head_count does not divide head_count */
#define FKA_ERR_ARGUMENT      3  /* an invalid option or value: struct_size, kernel, scale, bandwidth (NaN, or not finite
                                    and positive for the Gaussian kernel), NaN or +inf sink logits, a sink given both ways,
                                    max_threads < -1, reserved != 0, or an output overlapping an input or the other output */
#define FKA_ERR_WORKSPACE     4  /* workspace_bytes is negative or smaller than fka_workspace_size_* returns */
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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FKA_H */
