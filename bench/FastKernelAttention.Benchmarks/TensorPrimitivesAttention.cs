using System;
using System.Numerics.Tensors;

namespace FastKernelAttention.Benchmarks;

/// <summary>
/// The plain baseline: attention one query row at a time with <see cref="TensorPrimitives"/> — logits by Dot (or by
/// squared distances for the Gaussian kernel), a max-subtracted SoftMax, then one MultiplyAdd per key. It materialises one
/// row of n logits, not the whole matrix, and allocates nothing (the caller passes the row buffer).
/// </summary>
public static class TensorPrimitivesAttention
{
    /// <summary>O = softmax(s)·V row by row; <paramref name="scores"/> holds n floats; <paramref name="difference"/> d floats.</summary>
    public static void Forward(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        int m, int n, int d, int dv, bool gaussian, float scaleOrHalfInverseBandwidthSquared, bool causal,
        Span<float> scores, Span<float> difference)
    {
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<float> q = query.Slice(i * d, d);
            int visible = causal ? Math.Min(n, i + (n - m) + 1) : n;
            Span<float> row = scores[..visible];
            for (int j = 0; j < visible; j++)
            {
                ReadOnlySpan<float> k = key.Slice(j * d, d);
                if (gaussian)
                {
                    TensorPrimitives.Subtract(q, k, difference);
                    row[j] = -TensorPrimitives.SumOfSquares<float>(difference) * scaleOrHalfInverseBandwidthSquared;
                }
                else
                {
                    row[j] = TensorPrimitives.Dot(q, k) * scaleOrHalfInverseBandwidthSquared;
                }
            }
            Span<float> o = output.Slice(i * dv, dv);
            o.Clear();
            if (visible == 0) continue;
            // SoftMax does not subtract the row maximum in every version: do it first (STYLE §7).
            TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
            TensorPrimitives.SoftMax(row, row);
            for (int j = 0; j < visible; j++)
                TensorPrimitives.MultiplyAdd(value.Slice(j * dv, dv), row[j], o, o);
        }
    }
}
