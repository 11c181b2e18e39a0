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
    /// or <see cref="System.Half"/>, read as their bit patterns), dot kernel only: up to 16 query rows (20 without GQA, <see cref="Widens"/>)
    /// the decode kernel widens K and V in registers (in blocks of <see cref="DecodeConstants.RowsPerItem"/> rows, each
    /// reading the whole cache); above, one kv head at a time is widened into a contiguous float copy and the float block
    /// kernel runs its query heads on it — the float call's bits on the widened values — unless the copy of one kv head
    /// would exceed 64 MiB. Same masks, sinks, threads and determinism as the float call.
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
        long widened = KernelConstants.Align((long)key.Height * headDim * sizeof(float)) + KernelConstants.Align((long)key.Height * valueDim * sizeof(float));
        bool widen = Widens(query.Height, headCount / keyValueHeadCount) && query.Height > DecodeMaxQueries(path)
            && widened <= MaxPackedBytesWithoutWorkspace;
        required += widen ? widened : 0;

        if (required <= MaxStackScratch)
        {
            byte* buffer = stackalloc byte[(int)required];
            ExecuteHalfPrecision(path, storage, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, buffer, degree, headDim, valueDim, widen);
        }
        else
        {
            byte* buffer = (byte*)NativeMemory.Alloc((nuint)required);
            try
            {
                ExecuteHalfPrecision(path, storage, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, buffer, degree, headDim, valueDim, widen);
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    private static void ExecuteHalfPrecision<TKv>(IsaPath path, KeyValueStorage storage, ReadOnlySpan2D<float> query, ReadOnlySpan2D<TKv> key,
        ReadOnlySpan2D<TKv> value, Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp, ReadOnlySpan<float> sinkLogits, byte* buffer, int degree, int headDim, int valueDim, bool widen)
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

            long scratchStride = KernelConstants.ScratchBytes(headDim, valueDim, sizeof(float), headCount);
            if (widen)
            {
                float* wideKey = (float*)(cursor + degree * scratchStride);
                float* wideValue = (float*)((byte*)wideKey + KernelConstants.Align((long)key.Height * headDim * sizeof(float)));
                switch (path)
                {
                    case IsaPath.Avx512:
                        RunWidened<Vector512<float>, Avx512Ops<float>>(storage, &problem, in layout, keyValueHeadCount, cursor, scratchStride, wideKey, wideValue, degree);
                        break;
                    case IsaPath.Avx2:
                        RunWidened<Vector256<float>, Avx2Ops<float>>(storage, &problem, in layout, keyValueHeadCount, cursor, scratchStride, wideKey, wideValue, degree);
                        break;
                    case IsaPath.Vector128:
                        RunWidened<Vector128<float>, Vector128Ops<float>>(storage, &problem, in layout, keyValueHeadCount, cursor, scratchStride, wideKey, wideValue, degree);
                        break;
                    default:
                        RunWidened<float, ScalarOps<float>>(storage, &problem, in layout, keyValueHeadCount, cursor, scratchStride, wideKey, wideValue, degree);
                        break;
                }
                return;
            }
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

    /// <summary>Whether a 16-bit call with <paramref name="queryCount"/> rows and kv groups of <paramref name="groupSize"/>
    /// heads widens K and V per kv head (<see cref="RunHalfPrecision{TKv}"/>) instead of the decode kernel, which reads the
    /// whole cache once per 8 rows: above 16 rows with GQA/MQA (one widening serves the group), above 20 without. In-process
    /// A/B on the Zen 5 EPYC, one thread, bfloat16, n = 4096, d = 128, widened over decode: H = 32, m = 17 1.14, m = 20
    /// 1.10, m = 22 0.98, m = 24 0.96, m = 32 0.72, m = 64 0.50 of the time; GQA 32/8, m = 17 0.93, m = 24 0.68, m = 32 0.50.</summary>
    internal static bool Widens(int queryCount, int groupSize) => queryCount > 2 * DecodeConstants.RowsPerItem && (groupSize > 1 || queryCount > 20);

    /// <summary>The float call's decode threshold on <paramref name="path"/> (<see cref="DecodeMaxQueries{T, TVec, TOps}"/>).</summary>
    private static int DecodeMaxQueries(IsaPath path) => path switch
    {
        IsaPath.Avx512 => DecodeMaxQueries<float, Vector512<float>, Avx512Ops<float>>(),
        IsaPath.Avx2 => DecodeMaxQueries<float, Vector256<float>, Avx2Ops<float>>(),
        IsaPath.Vector128 => DecodeMaxQueries<float, Vector128<float>, Vector128Ops<float>>(),
        _ => DecodeMaxQueries<float, float, ScalarOps<float>>(),
    };

    /// <summary>For each kv head in turn: its K and V rows widened into [n × d] and [n × dv] floats at
    /// <paramref name="wideKey"/> and <paramref name="wideValue"/> (in parallel, by runs of rows), then the float block
    /// kernel on its G query heads (<see cref="RunBlocks{T, TVec, TOps}"/> on the problem's slice of Q, O, the
    /// log-sum-exp and the sinks).</summary>
    private static void RunWidened<TVec, TOps>(KeyValueStorage storage, AttentionProblem<float>* problem, in DecodeLayout<ushort> layout,
        int keyValueHeadCount, byte* scratch, long scratchStride, float* wideKey, float* wideValue, int degree)
        where TVec : unmanaged
        where TOps : struct, ISimdOps<float, TVec>
    {
        int n = problem->KeyCount, d = problem->HeadDim, dv = problem->ValueDim, m = problem->QueryCount, group = problem->GroupSize;
        for (int g = 0; g < keyValueHeadCount; g++)
        {
            var widening = new WidenRows
            {
                Key = layout.Key + (nint)g * d,
                KeyStride = layout.KeyStride,
                Value = layout.Value + (nint)g * dv,
                ValueStride = layout.ValueStride,
                WideKey = wideKey,
                WideValue = wideValue,
                KeyCount = n,
                HeadDim = d,
                ValueDim = dv,
            };
            int items = (n + WidenRows.RowsPerItem - 1) / WidenRows.RowsPerItem;
            if (storage == KeyValueStorage.BFloat16)
            {
                var work = new WidenWork<TVec, TOps, BFloat16Format<TVec>> { Rows = widening };
                BlockParallel.Run(ref work, items, degree);
            }
            else
            {
                var work = new WidenWork<TVec, TOps, HalfFormat<TVec>> { Rows = widening };
                BlockParallel.Run(ref work, items, degree);
            }
            AttentionProblem<float> heads = *problem;
            heads.Query = problem->Query + (nint)g * group * d;
            heads.Key = wideKey;
            heads.KeyStride = d;
            heads.KeyHeadStride = (nint)n * d;
            heads.Value = wideValue;
            heads.ValueStride = dv;
            heads.ValueHeadStride = (nint)n * dv;
            heads.Output = problem->Output + (nint)g * group * dv;
            heads.LogSumExp = problem->LogSumExp != null ? problem->LogSumExp + (nint)g * group * m : null;
            heads.SinkLogits = problem->SinkLogits != null ? problem->SinkLogits + (nint)g * group : null;
            heads.HeadCount = group;
            RunBlocks<float, TVec, TOps>(&heads, scratch, scratchStride, degree);
        }
    }

    /// <summary>Where one kv head's K and V rows are widened from and to (<see cref="WidenWork{TVec, TOps, TFormat}"/>).</summary>
    private struct WidenRows
    {
        public const int RowsPerItem = 64;

        public ushort* Key;
        public nint KeyStride;
        public ushort* Value;
        public nint ValueStride;
        public float* WideKey;
        public float* WideValue;
        public int KeyCount;
        public int HeadDim;
        public int ValueDim;
    }

    /// <summary>Rows [64·item, 64·item + 64) of one kv head's K and V widened to float, contiguous.</summary>
    private struct WidenWork<TVec, TOps, TFormat> : IBlockWork
        where TVec : unmanaged
        where TOps : struct, ISimdOps<float, TVec>
        where TFormat : struct, IKeyValueFormat<float, TVec, ushort>
    {
        public WidenRows Rows;

        public readonly void Execute(int item, int worker)
        {
            WidenRows r = Rows;
            int end = System.Math.Min((item + 1) * WidenRows.RowsPerItem, r.KeyCount);
            for (int j = item * WidenRows.RowsPerItem; j < end; j++)
            {
                WidenRow(r.Key + j * r.KeyStride, r.WideKey + (nint)j * r.HeadDim, r.HeadDim);
                WidenRow(r.Value + j * r.ValueStride, r.WideValue + (nint)j * r.ValueDim, r.ValueDim);
            }
        }

        private static void WidenRow(ushort* source, float* destination, int count)
        {
            int w = TOps.Count;
            int c = 0;
            // In bounds: c + w <= count elements of the row at both ends.
            for (; c + w <= count; c += w) TOps.Store(TFormat.Load(source + c), destination + c);
            for (; c < count; c++) destination[c] = TFormat.LoadScalar(source + c);
        }
    }
}
