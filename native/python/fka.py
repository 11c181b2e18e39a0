"""ctypes binding of the FastKernelAttention C ABI (native/include/fka.h).

The library is found from, in order: the FKA_LIBRARY environment variable (a file), FKA_LIB_DIR (a folder), or
native/build/lib next to this file (where native/build.sh publishes it). numpy is optional: matrices may be lists of
rows (results are lists of rows) or 2-D numpy arrays (results are numpy arrays; strided rows are passed as pitches).

    import fka
    out, lse = fka.forward([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], scale=1.0, return_lse=True)
    g = fka.nw_predict([[1.0]], [[0.0], [1.0], [2.0]], [[0.0], [1.0], [4.0]], bandwidth=1.0)   # [[1.548137...]]

Errors raise FkaError with .status (an FKA_ERR_* code), .name and the library's message.
"""
import ctypes
import math
import os
import sys

try:
    import numpy as _np
except ImportError:  # numpy is optional
    _np = None

FKA_OK = 0
FKA_ERR_NULL_POINTER = 1
FKA_ERR_SHAPE = 2
FKA_ERR_ARGUMENT = 3
FKA_ERR_WORKSPACE = 4
FKA_ERR_OVERFLOW = 5
FKA_ERR_OUT_OF_MEMORY = 6
FKA_ERR_INTERNAL = 99

KERNELS = {"dot": 0, "gaussian": 1}
ISA_NAMES = {0: "Scalar", 1: "Vector128", 2: "Avx2", 3: "Avx512"}


class FkaError(RuntimeError):
    """A non-zero status from the library, with its name and per-thread message."""

    def __init__(self, status, name, message):
        super().__init__("%s (%d): %s" % (name, status, message))
        self.status = status
        self.name = name
        self.message = message


class AttentionOptions(ctypes.Structure):
    """fka_attention_options, version 1 (48 bytes)."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("kernel", ctypes.c_int32),
        ("scale", ctypes.c_double),
        ("bandwidth", ctypes.c_double),
        ("sink_logit", ctypes.c_double),
        ("has_sink_logit", ctypes.c_int32),
        ("causal", ctypes.c_int32),
        ("max_threads", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


def _library_path():
    explicit = os.environ.get("FKA_LIBRARY")
    if explicit:
        return explicit
    if sys.platform == "win32":
        name = "fastkernelattention.dll"
    elif sys.platform == "darwin":
        name = "libfastkernelattention.dylib"
    else:
        name = "libfastkernelattention.so"
    folder = os.environ.get("FKA_LIB_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "lib")
    return os.path.join(folder, name)


_i64 = ctypes.c_int64
_vp = ctypes.c_void_p
_lib = None


def library():
    """Loads the shared library once and declares every export's signature."""
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(_library_path())
    opt = ctypes.POINTER(AttentionOptions)
    lib.fka_version.restype = ctypes.c_uint32
    lib.fka_version.argtypes = []
    lib.fka_version_string.restype = ctypes.c_char_p
    lib.fka_version_string.argtypes = []
    lib.fka_active_isa.restype = ctypes.c_int32
    lib.fka_active_isa.argtypes = []
    lib.fka_last_error_message.restype = ctypes.c_char_p
    lib.fka_last_error_message.argtypes = []
    lib.fka_status_string.restype = ctypes.c_char_p
    lib.fka_status_string.argtypes = [ctypes.c_int32]
    matrices = [_vp, _i64] * 4  # query, key, value, output with their pitches
    for suffix in ("f32", "f64"):
        single = [_i64] * 4 + matrices + [_vp, opt]
        multi = [_i64] * 6 + matrices + [_vp, _vp, opt]
        for name, args in (("fka_attention_forward_", single), ("fka_attention_forward_ws_", single + [_vp, _i64]),
                           ("fka_attention_forward_multihead_", multi),
                           ("fka_attention_forward_multihead_ws_", multi + [_vp, _i64])):
            function = getattr(lib, name + suffix)
            function.restype = ctypes.c_int32
            function.argtypes = args
        size = getattr(lib, "fka_workspace_size_" + suffix)
        size.restype = ctypes.c_int32
        size.argtypes = [_i64] * 5 + [opt, ctypes.POINTER(_i64)]
        # Nadaraya-Watson: sizes, queries/samples/responses with pitches, bandwidths + count, log-weights, output + pitch,
        # LSE, ESS, entropy, local variance + pitch (+ workspace, bytes).
        predict = [_i64] * 4 + [_vp, _i64] * 3 + [_vp, _i64, _vp, _vp, _i64, _vp, _vp, _vp, _vp, _i64]
        samples = [_i64] * 3 + [_vp, _i64] * 2 + [_vp, _i64, ctypes.POINTER(ctypes.c_double)]
        i32 = ctypes.c_int32
        for name, args in (("fka_nw_predict_", predict), ("fka_nw_predict_ws_", predict + [_vp, _i64]),
                           ("fka_nw_predict_workspace_size_", [_i64] * 5 + [i32] * 4 + [ctypes.POINTER(_i64)]),
                           ("fka_nw_cross_validation_", samples), ("fka_nw_cross_validation_ws_", samples + [_vp, _i64]),
                           ("fka_nw_cross_validation_workspace_size_", [_i64] * 4 + [ctypes.POINTER(_i64)]),
                           ("fka_nw_select_bandwidth_", samples)):
            function = getattr(lib, name + suffix)
            function.restype = ctypes.c_int32
            function.argtypes = args
    _lib = lib
    return lib


def _check(status):
    if status != FKA_OK:
        lib = library()
        raise FkaError(status, lib.fka_status_string(status).decode(), lib.fka_last_error_message().decode("utf-8", "replace"))


def version():
    """The library version as a (major, minor, patch) tuple."""
    packed = library().fka_version()
    return (packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF)


def version_string():
    return library().fka_version_string().decode()


def active_isa():
    """The kernel path: 'Scalar', 'Vector128', 'Avx2' or 'Avx512'."""
    return ISA_NAMES.get(library().fka_active_isa(), "unknown")


def make_options(kernel="dot", scale=None, bandwidth=0.0, causal=False, sink=None, threads=0):
    """An fka_attention_options from keyword arguments (scale None = 1/sqrt(d); sink None = no sink)."""
    options = AttentionOptions()
    options.struct_size = ctypes.sizeof(AttentionOptions)
    options.kernel = KERNELS[kernel] if isinstance(kernel, str) else int(kernel)
    options.scale = 0.0 if scale is None else float(scale)
    options.bandwidth = float(bandwidth)
    options.has_sink_logit = 0 if sink is None else 1
    options.sink_logit = 0.0 if sink is None else float(sink)
    options.causal = 1 if causal else 0
    options.max_threads = int(threads)
    return options


class _Matrix:
    """A matrix as the C ABI wants it: pointer, rows, columns, pitch in elements; keeps its buffer alive."""

    def __init__(self, data, ctype, width_hint=None):
        self.numpy = _np is not None and isinstance(data, _np.ndarray)
        if self.numpy:
            dtype = _np.float32 if ctype is ctypes.c_float else _np.float64
            array = data
            if array.ndim != 2:
                raise ValueError("expected a 2-D array")
            item = _np.dtype(dtype).itemsize
            if array.dtype != dtype or array.strides[1] != item or array.strides[0] % item or array.strides[0] < 0:
                array = _np.ascontiguousarray(array, dtype=dtype)
            self.array = array
            self.rows, self.cols = array.shape
            self.pitch = array.strides[0] // item if self.rows > 1 else self.cols
            self.pointer = array.ctypes.data
        else:
            rows = [list(map(float, row)) for row in data]
            self.rows = len(rows)
            self.cols = len(rows[0]) if rows else (width_hint or 0)
            if any(len(row) != self.cols for row in rows):
                raise ValueError("ragged rows")
            self.pitch = self.cols
            flat = [x for row in rows for x in row]
            self.buffer = (ctype * max(1, len(flat)))(*flat)
            self.pointer = ctypes.addressof(self.buffer)


def _empty(rows, cols, ctype, as_numpy):
    if as_numpy:
        array = _np.zeros((rows, cols), dtype=_np.float32 if ctype is ctypes.c_float else _np.float64)
        return array, array.ctypes.data
    buffer = (ctype * max(1, rows * cols))()
    return buffer, ctypes.addressof(buffer)


def _rows(buffer, rows, cols):
    return [[buffer[i * cols + j] for j in range(cols)] for i in range(rows)]


def _check_shapes(q, k, v, heads, kv_heads):
    """What C cannot see (the extents of Python buffers): the widths and row counts must agree."""
    if heads > 0 and kv_heads > 0 and heads % kv_heads == 0 and q.cols % heads == 0:
        d = q.cols // heads
        if k.cols != kv_heads * d:
            raise ValueError("key must be n x %d (kv_heads*head_dim), got %d x %d" % (kv_heads * d, k.rows, k.cols))
    if v.rows != k.rows and not (v.rows == 0 and v.cols == 0):
        raise ValueError("value must have one row per key (%d), got %d" % (k.rows, v.rows))


def forward_multihead(query, key, value, heads=1, kv_heads=1, dtype="f64", sink_logits=None, return_lse=False,
                      workspace=False, **options):
    """Multi-head / grouped-query attention (token-major: query m x (H*d), key n x (Hkv*d), value n x (Hkv*dv)).

    Keyword options: kernel ('dot' | 'gaussian'), scale, bandwidth, causal, sink (one logit for every head), threads.
    sink_logits: one per head. workspace=True passes a caller workspace sized by fka_workspace_size_*.
    Returns the output m x (H*dv) (and the log-sum-exp [H x m] when return_lse)."""
    lib = library()
    ctype = ctypes.c_float if dtype == "f32" else ctypes.c_double
    q = _Matrix(query, ctype)
    k = _Matrix(key, ctype)
    v = _Matrix(value, ctype, width_hint=0)
    m, n = q.rows, k.rows
    _check_shapes(q, k, v, heads, kv_heads)
    if sink_logits is not None and len(sink_logits) != heads:
        raise ValueError("sink_logits needs one logit per head (%d), got %d" % (heads, len(sink_logits)))
    if heads <= 0 or q.cols % heads:
        head_dim = q.cols  # let the library report the shape error
    else:
        head_dim = q.cols // heads
    value_dim = v.cols // kv_heads if kv_heads > 0 and v.cols % kv_heads == 0 else v.cols
    as_numpy = q.numpy
    out, out_ptr = _empty(m, heads * value_dim if heads > 0 else 0, ctype, as_numpy)
    lse, lse_ptr = _empty(max(heads, 0), m, ctype, as_numpy) if return_lse else (None, None)
    sinks = None
    if sink_logits is not None:
        sinks = (ctype * max(1, len(sink_logits)))(*map(float, sink_logits))
    opts = make_options(**options)
    suffix = dtype
    args = [m, n, heads, kv_heads, head_dim, value_dim, q.pointer, q.pitch, k.pointer, k.pitch, v.pointer, v.pitch,
            out_ptr, 0, lse_ptr, ctypes.addressof(sinks) if sinks is not None else None, ctypes.byref(opts)]
    if workspace:
        size = _i64()
        _check(getattr(lib, "fka_workspace_size_" + suffix)(head_dim, value_dim, n, heads, kv_heads, ctypes.byref(opts),
                                                             ctypes.byref(size)))
        scratch = ctypes.create_string_buffer(size.value)
        _check(getattr(lib, "fka_attention_forward_multihead_ws_" + suffix)(*args, scratch, size.value))
    else:
        _check(getattr(lib, "fka_attention_forward_multihead_" + suffix)(*args))
    result = out if as_numpy else _rows(out, m, heads * value_dim)
    if not return_lse:
        return result
    return result, (lse if as_numpy else _rows(lse, heads, m))


def forward(query, key, value, dtype="f64", return_lse=False, **options):
    """Single-head attention: query m x d, key n x d, value n x dv -> output m x dv (and LSE, m values).
    Keyword options as forward_multihead."""
    lib = library()
    ctype = ctypes.c_float if dtype == "f32" else ctypes.c_double
    q = _Matrix(query, ctype)
    k = _Matrix(key, ctype)
    v = _Matrix(value, ctype, width_hint=0)
    m, n, d, dv = q.rows, k.rows, q.cols, v.cols
    _check_shapes(q, k, v, 1, 1)
    out, out_ptr = _empty(m, dv, ctype, q.numpy)
    lse, lse_ptr = _empty(1, m, ctype, q.numpy) if return_lse else (None, None)
    opts = make_options(**options)
    _check(getattr(lib, "fka_attention_forward_" + dtype)(m, n, d, dv, q.pointer, q.pitch, k.pointer, k.pitch, v.pointer,
                                                           v.pitch, out_ptr, 0, lse_ptr, ctypes.byref(opts)))
    result = out if q.numpy else _rows(out, m, dv)
    if not return_lse:
        return result
    return result, (lse[0] if q.numpy else [lse[i] for i in range(m)])


def _vector(values, ctype):
    values = list(map(float, values))
    return (ctype * max(1, len(values)))(*values)


def nw_predict(queries, samples, responses, bandwidth, dtype="f64", sample_log_weights=None, return_diagnostics=False):
    """Nadaraya-Watson regression (MATH.md section 6): queries m x d, samples n x d, responses n x p -> estimates m x p.

    bandwidth: one h (a number, or a sequence of length 1) or d values h_k (one per dimension).
    sample_log_weights: None or n values log pi_j (-inf drops a sample).
    return_diagnostics=True also returns a dict with 'log_sum_exp', 'effective_sample_size', 'entropy' (m values each)
    and 'local_variance' (m x p), all from the same fused call."""
    lib = library()
    ctype = ctypes.c_float if dtype == "f32" else ctypes.c_double
    x = _Matrix(queries, ctype)
    xs = _Matrix(samples, ctype, width_hint=x.cols)
    y = _Matrix(responses, ctype, width_hint=1)
    m, n, d, p = x.rows, xs.rows, x.cols, y.cols
    if xs.cols != d and n > 0:
        raise ValueError("samples must be n x %d (the queries' d), got %d x %d" % (d, xs.rows, xs.cols))
    if y.rows != n:
        raise ValueError("responses must have one row per sample (%d), got %d" % (n, y.rows))
    h = [bandwidth] if isinstance(bandwidth, (int, float)) else list(bandwidth)
    bandwidths = _vector(h, ctype)
    weights = None
    if sample_log_weights is not None:
        if len(sample_log_weights) != n:
            raise ValueError("sample_log_weights needs one value per sample (%d), got %d" % (n, len(sample_log_weights)))
        weights = _vector(sample_log_weights, ctype)
    as_numpy = x.numpy
    out, out_ptr = _empty(m, p, ctype, as_numpy)
    diagnostics = {}
    pointers = [None, None, None, None]
    if return_diagnostics:
        for i, name in enumerate(("log_sum_exp", "effective_sample_size", "entropy")):
            diagnostics[name], pointers[i] = _empty(1, m, ctype, as_numpy)
        diagnostics["local_variance"], pointers[3] = _empty(m, p, ctype, as_numpy)
    _check(getattr(lib, "fka_nw_predict_" + dtype)(
        m, n, d, p, x.pointer, x.pitch, xs.pointer, xs.pitch, y.pointer, y.pitch, ctypes.addressof(bandwidths), len(h),
        ctypes.addressof(weights) if weights is not None else None, out_ptr, 0, pointers[0], pointers[1], pointers[2],
        pointers[3], 0))
    result = out if as_numpy else _rows(out, m, p)
    if not return_diagnostics:
        return result
    for name in ("log_sum_exp", "effective_sample_size", "entropy"):
        buffer = diagnostics[name]
        diagnostics[name] = buffer[0] if as_numpy else [buffer[i] for i in range(m)]
    if not as_numpy:
        diagnostics["local_variance"] = _rows(diagnostics["local_variance"], m, p)
    return result, diagnostics


def nw_cross_validation(samples, responses, bandwidth, dtype="f64"):
    """Leave-one-out CV(h) (MATH.md section 6) of samples n x d and responses n x p at one or d bandwidths."""
    lib = library()
    ctype = ctypes.c_float if dtype == "f32" else ctypes.c_double
    xs = _Matrix(samples, ctype)
    y = _Matrix(responses, ctype, width_hint=1)
    if y.rows != xs.rows:
        raise ValueError("responses must have one row per sample (%d), got %d" % (xs.rows, y.rows))
    h = [bandwidth] if isinstance(bandwidth, (int, float)) else list(bandwidth)
    bandwidths = _vector(h, ctype)
    score = ctypes.c_double()
    _check(getattr(lib, "fka_nw_cross_validation_" + dtype)(xs.rows, xs.cols, y.cols, xs.pointer, xs.pitch, y.pointer,
                                                             y.pitch, ctypes.addressof(bandwidths), len(h), ctypes.byref(score)))
    return score.value


def nw_select_bandwidth(samples, responses, per_dimension=False, dtype="f64"):
    """Least-squares leave-one-out bandwidth selection: returns (bandwidths, CV at them); one bandwidth, or one per
    dimension with per_dimension=True."""
    lib = library()
    ctype = ctypes.c_float if dtype == "f32" else ctypes.c_double
    xs = _Matrix(samples, ctype)
    y = _Matrix(responses, ctype, width_hint=1)
    if y.rows != xs.rows:
        raise ValueError("responses must have one row per sample (%d), got %d" % (xs.rows, y.rows))
    count = xs.cols if per_dimension else 1
    bandwidths = (ctype * max(1, count))()
    score = ctypes.c_double()
    _check(getattr(lib, "fka_nw_select_bandwidth_" + dtype)(xs.rows, xs.cols, y.cols, xs.pointer, xs.pitch, y.pointer,
                                                             y.pitch, ctypes.addressof(bandwidths), count, ctypes.byref(score)))
    return [bandwidths[k] for k in range(count)], score.value


def call_raw(name, *args):
    """Calls an export by name with raw ctypes arguments and returns its status (no exception): for tests."""
    return getattr(library(), name)(*args)


def last_error_message():
    return library().fka_last_error_message().decode("utf-8", "replace")


if __name__ == "__main__":
    print("fka", version_string(), "ISA", active_isa())
    print(forward([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], scale=1.0, return_lse=True))
