namespace FastKernelAttention.Kernels;

/// <summary>
/// One validated attention call, as raw pointers into memory the caller has pinned for the whole call, so that worker
/// threads can share it. Strides are in elements. Head h reads query columns [h·d, (h+1)·d), kv head h / G, and writes
/// output columns [h·dv, (h+1)·dv) and log-sum-exp entries [h·m, (h+1)·m) (MATH §1).
/// </summary>
internal unsafe struct AttentionProblem<T>
    where T : unmanaged
{
    public T* Query;
    public nint QueryStride;
    public T* Key;
    public nint KeyStride;
    public T* Value;
    public nint ValueStride;

    /// <summary>Elements from kv head g's first key (value) element to head g + 1's: d (dv) for the caller's token-major
    /// rows, n·d (n·dv) for the per-head copy the driver packs for strided multi-head calls.</summary>
    public nint KeyHeadStride;
    public nint ValueHeadStride;
    public T* Output;
    public nint OutputStride;

    /// <summary>Null when the log-sum-exp is not requested.</summary>
    public T* LogSumExp;

    public int QueryCount;
    public int KeyCount;
    public int HeadDim;
    public int ValueDim;
    public int HeadCount;

    /// <summary>G = H / Hkv query heads per kv head.</summary>
    public int GroupSize;

    public bool Gaussian;
    public bool Causal;

    /// <summary>The query scale, in base-2 logit units (the kernels compute 2^(s·log₂e) = e^s): dot, the logit scale
    /// times log₂e; Gaussian expansion, log₂e/h².</summary>
    public double Scale;

    /// <summary>Gaussian: 1/(2h²), natural units (the kernels multiply by log₂e where a logit needs it).</summary>
    public double HalfInverseBandwidthSquared;

    /// <summary>Null, or one sink logit per query head (−∞ for none).</summary>
    public double* SinkLogits;

    /// <summary>Gaussian: the key mean of each kv head (HeadDim elements each), subtracted from queries and keys.</summary>
    public T* Centers;

    /// <summary>Gaussian: k̃ = k − c for every kv head, [Hkv][n][d] contiguous.</summary>
    public T* CentredKeys;

    /// <summary>Null, or the per-key logit bias [Hkv][n] in base 2 (times log₂e): the Gaussian expansion's −‖k̃_j‖²/(2h²)
    /// (unless <see cref="DirectDifferences"/>) plus the log-weight log π_j when key log-weights are given.</summary>
    public T* KeyBias;

    /// <summary>Gaussian: the logits use direct differences Σ(q̃−k̃)² instead of the expansion (decided once per call).</summary>
    public bool DirectDifferences;

    /// <summary>Key log-weights were given: the bias carries log π_j, so the expansion's clamp D ≥ 0 is not applied.</summary>
    public bool HasKeyLogWeights;

    /// <summary>Key j is invisible to query i when j == i + (n − m) (leave-one-out self-attention).</summary>
    public bool ExcludeDiagonal;

    /// <summary>Every element of V is finite (checked once per causal lane-kernel call): band tiles then skip their own check.</summary>
    public bool ValuesFinite;

    /// <summary><see cref="ValuesFinite"/> is already known (the K/V copy checked V as it moved it).</summary>
    public bool ValuesChecked;

    /// <summary>The decode kernel's split states, [H][m][splits][m, l, term, a(dv)] doubles (<see cref="DecodeConstants.PartialBytes"/>).</summary>
    public double* DecodePartials;
}
