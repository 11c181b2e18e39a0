using System.Runtime.InteropServices;

namespace FastKernelAttention.Native;

/// <summary>The C struct <c>fka_attention_options</c> (fka.h), version 1: 48 bytes, natural alignment.</summary>
/// <remarks>Zero-initialised with <c>StructSize</c> set it is the default call: dot kernel, scale 1/√d, no mask, no sink,
/// calling thread only. Later versions only append fields; a caller's larger struct is accepted when every byte this
/// version does not know is zero.</remarks>
[StructLayout(LayoutKind.Sequential)]
internal struct FkaAttentionOptions
{
    /// <summary>The size of this struct version in bytes.</summary>
    public const int Version1Size = 48;

    /// <summary>The largest struct size accepted (bytes past <see cref="Version1Size"/> must be zero).</summary>
    public const int MaxSize = 4096;

    /// <summary>sizeof(fka_attention_options) as compiled by the caller.</summary>
    public uint StructSize;

    /// <summary>FKA_KERNEL_DOT = 0, FKA_KERNEL_GAUSSIAN = 1.</summary>
    public int Kernel;

    /// <summary>Dot kernel: 0 or NaN means 1/√d, otherwise finite and positive. Gaussian: must be 0 or NaN.</summary>
    public double Scale;

    /// <summary>Gaussian kernel: h, finite and positive. NaN is rejected for every kernel.</summary>
    public double Bandwidth;

    /// <summary>The sink logit s₀ when <see cref="HasSinkLogit"/> is non-zero (−∞: none; NaN and +∞ rejected).</summary>
    public double SinkLogit;

    /// <summary>Non-zero: use <see cref="SinkLogit"/> for every head.</summary>
    public int HasSinkLogit;

    /// <summary>Non-zero: bottom-right aligned causal mask.</summary>
    public int Causal;

    /// <summary>0 or 1: calling thread only; −1: every processor; k &gt; 1: at most k threads.</summary>
    public int MaxThreads;

    /// <summary>Must be zero (room for flags).</summary>
    public int Reserved;
}
