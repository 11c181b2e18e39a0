using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

internal static unsafe partial class FusedAttentionKernel<T, TVec, TOps>
{
    /// <summary>Queries at or below which a call runs the decode kernel (<see cref="DecodeKernel{T, TVec, TOps, TKv, TFormat}"/>,
    /// at least 1) instead of the lane-block kernel, where most lanes would be empty.</summary>
    public static int RowKernelMaxQueries => BlockLanes / 8;

    /// <summary>p_j = 2^{s_j − shift} (base-2 logits) in place (vectorised over keys); returns Σ_j p_j.</summary>
    internal static T ExpInPlace(T* scores, int count, T shift)
    {
        int w = TOps.Count;
        TVec shiftVector = TOps.Broadcast(shift);
        TVec sum = TOps.Zero;
        int j = 0;
        for (; j + w <= count; j += w)
        {
            TVec e = VectorExp.Exp2<T, TVec, TOps>(TOps.Subtract(TOps.Load(scores + j), shiftVector));
            TOps.Store(e, scores + j);
            sum = TOps.Add(sum, e);
        }
        T total = TOps.HorizontalSum(sum);
        for (; j < count; j++)
        {
            T e = VectorExp.Exp2<T, T, Isa.ScalarOps<T>>(scores[j] - shift);
            scores[j] = e;
            total += e;
        }
        return total;
    }
}
