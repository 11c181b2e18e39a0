using System;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Internals;
using FastKernelAttention.Kernels.Isa;

namespace FastKernelAttention.Kernels;

/// <summary>The 16-bit element formats of K and V (widened to float in registers).</summary>
internal enum KeyValueStorage
{
    /// <summary>bfloat16 (<see cref="FastKernelAttention.BFloat16"/>).</summary>
    BFloat16,

    /// <summary>IEEE binary16 (<see cref="System.Half"/>).</summary>
    Half,
}

internal static unsafe partial class AttentionDriver
{
    /// <summary>
    /// A call with float Q and O and 16-bit K and V (<typeparamref name="TKv"/> is <see cref="FastKernelAttention.BFloat16"/>
    /// or <see cref="System.Half"/>, read as their bit patterns): every m runs the decode kernel (in blocks of
    /// <see cref="DecodeConstants.RowsPerItem"/> rows), dot kernel only. Same masks, sinks, threads and determinism as the
    /// float call.
    /// </summary>
    public static void RunHalfPrecision<TKv>(IsaPath path, KeyValueStorage storage, ReadOnlySpan2D<float> query, ReadOnlySpan2D<TKv> key,
        ReadOnlySpan2D<TKv> value, Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp, ReadOnlySpan<float> sinkLogits)
        where TKv : unmanaged
    {
        ValidateShapes(query.Height, query.Width, key.Height, key.Width, value.Height, value.Width, output.Height, output.Width,
            headCount, keyValueHeadCount, logSumExp.Length, out int headDim, out int valueDim);
        ValidateOptions(in options, sinkLogits);
        ValidateSinks(sinkLogits, headCount);
        if (options.Kernel != AttentionKernel.Dot)
            ThrowHelper.ThrowArgument(nameof(options), "16-bit keys and values support the dot kernel only (widen them to float for the Gaussian kernel).");
        int degree = BlockParallel.ResolveDegree(options.MaxDegreeOfParallelism);
        long required = WorkspaceBytes(sizeof(float), headDim, valueDim, key.Height, headCount, keyValueHeadCount, gaussian: false, degree);
        if (query.Height == 0) return;

        if (required <= MaxStackScratch)
        {
            byte* buffer = stackalloc byte[(int)required];
            ExecuteHalfPrecision(path, storage, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, buffer, degree, headDim, valueDim);
        }
        else
        {
            byte* buffer = (byte*)NativeMemory.Alloc((nuint)required);
            try
            {
                ExecuteHalfPrecision(path, storage, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, buffer, degree, headDim, valueDim);
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    private static void ExecuteHalfPrecision<TKv>(IsaPath path, KeyValueStorage storage, ReadOnlySpan2D<float> query, ReadOnlySpan2D<TKv> key,
        ReadOnlySpan2D<TKv> value, Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp, ReadOnlySpan<float> sinkLogits, byte* buffer, int degree, int headDim, int valueDim)
        where TKv : unmanaged
    {
        byte* aligned = (byte*)(((nuint)buffer + 63) & ~(nuint)63);
        fixed (float* q = &query.DangerousGetReference())
        fixed (TKv* k = &key.DangerousGetReference())
        fixed (TKv* v = &value.DangerousGetReference())
        fixed (float* o = &output.DangerousGetReference())
        fixed (float* lse = logSumExp)
        {
            var problem = new AttentionProblem<float>
            {
                Query = q,
                QueryStride = RowStride(query),
                Output = o,
                OutputStride = RowStride((ReadOnlySpan2D<float>)output),
                LogSumExp = logSumExp.IsEmpty ? null : lse,
                QueryCount = query.Height,
                KeyCount = key.Height,
                HeadDim = headDim,
                ValueDim = valueDim,
                HeadCount = headCount,
                GroupSize = headCount / keyValueHeadCount,
                Causal = options.Causal,
                Scale = DotLogitScale(in options, headDim),
            };
            var layout = new DecodeLayout<ushort>
            {
                Key = (ushort*)k,
                KeyHeadStride = headDim,
                KeyStride = RowStride(key),
                Value = (ushort*)v,
                ValueStride = RowStride(value),
            };
            CheckOverlaps(in problem, query.Width, RangeOf(layout.Key, key.Height, key.Width, layout.KeyStride),
                RangeOf(layout.Value, value.Height, value.Width, layout.ValueStride), output.Width, logSumExp.Length);

            // The shared region has the float call's layout (sinks, key bias, split states); only sinks and split states are used.
            byte* cursor = aligned;
            problem.SinkLogits = StoreSinks(cursor, headCount, sinkLogits, in options);
            cursor += KernelConstants.Align((long)headCount * sizeof(double));
            cursor += KernelConstants.Align((long)keyValueHeadCount * key.Height * sizeof(float));
            problem.DecodePartials = (double*)cursor;
            cursor += KernelConstants.Align(DecodeConstants.PartialBytes(headCount, valueDim, key.Height));

            long scratchStride = KernelConstants.ScratchBytes(headDim, valueDim, sizeof(float));
            if (storage == KeyValueStorage.BFloat16)
            {
                switch (path)
                {
                    case IsaPath.Avx512:
                        RunDecode<float, Vector512<float>, Avx512Ops<float>, ushort, BFloat16Format<Vector512<float>>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                    case IsaPath.Avx2:
                        RunDecode<float, Vector256<float>, Avx2Ops<float>, ushort, BFloat16Format<Vector256<float>>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                    case IsaPath.Vector128:
                        RunDecode<float, Vector128<float>, Vector128Ops<float>, ushort, BFloat16Format<Vector128<float>>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                    default:
                        RunDecode<float, float, ScalarOps<float>, ushort, BFloat16Format<float>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                }
            }
            else
            {
                switch (path)
                {
                    case IsaPath.Avx512:
                        RunDecode<float, Vector512<float>, Avx512Ops<float>, ushort, HalfFormat<Vector512<float>>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                    case IsaPath.Avx2:
                        RunDecode<float, Vector256<float>, Avx2Ops<float>, ushort, HalfFormat<Vector256<float>>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                    case IsaPath.Vector128:
                        RunDecode<float, Vector128<float>, Vector128Ops<float>, ushort, HalfFormat<Vector128<float>>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                    default:
                        RunDecode<float, float, ScalarOps<float>, ushort, HalfFormat<float>>(&problem, in layout, cursor, scratchStride, degree);
                        break;
                }
            }
        }
    }
}
