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

    /// <summary>Dot: the logit scale. Gaussian: 1/h².</summary>
    public double Scale;

    /// <summary>Gaussian: 1/(2h²).</summary>
    public double HalfInverseBandwidthSquared;

    /// <summary>Null, or one sink logit per query head (−∞ for none).</summary>
    public double* SinkLogits;

    /// <summary>Gaussian: the key mean of each kv head (HeadDim elements each), subtracted from queries and keys.</summary>
    public T* Centers;

    /// <summary>Gaussian: k̃ = k − c for every kv head, [Hkv][n][d] contiguous.</summary>
    public T* CentredKeys;

    /// <summary>Gaussian: the key bias −‖k̃_j‖²/(2h²), [Hkv][n].</summary>
    public T* KeyBias;

    /// <summary>Gaussian: per query head, 1 when the logits use direct differences Σ(q−k)² instead of the expansion.</summary>
    public byte* DirectDifferences;
}
