using System;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;
using FastKernelAttention.Kernels.Isa;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

/// <summary>Validates a call, pins its memory, prepares the per-call state and runs the blocks on the chosen ISA path.</summary>
internal static unsafe partial class AttentionDriver
{
    /// <summary>Above this many bytes the scratch of a call without a workspace comes from native memory instead of the stack.</summary>
    private const int MaxStackScratch = 64 * 1024;

    /// <summary>The largest per-head K/V copy a call without a workspace allocates (very long contexts read K and V in place).</summary>
    private const long MaxPackedBytesWithoutWorkspace = 64L << 20;

    /// <summary>Relative logit error above which the Gaussian kernel uses direct differences instead of the expansion.</summary>
    private const double ExpansionErrorLimit = 1e-4;

    public static void Run<T>(IsaPath path, ReadOnlySpan2D<T> query, ReadOnlySpan2D<T> key, ReadOnlySpan2D<T> value,
        Span2D<T> output, int headCount, int keyValueHeadCount, in AttentionOptions options, Span<T> logSumExp,
        ReadOnlySpan<T> sinkLogits, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Run(path, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits,
            default, false, workspace, workspaceGiven);

    /// <summary>The full call: <paramref name="keyLogWeights"/> (empty, or n log-weights log π_j added to every logit) and
    /// <paramref name="excludeDiagonal"/> (key j hidden from query i when j = i + (n − m)) serve the estimators.</summary>
    public static void Run<T>(IsaPath path, ReadOnlySpan2D<T> query, ReadOnlySpan2D<T> key, ReadOnlySpan2D<T> value,
        Span2D<T> output, int headCount, int keyValueHeadCount, in AttentionOptions options, Span<T> logSumExp,
        ReadOnlySpan<T> sinkLogits, ReadOnlySpan<T> keyLogWeights, bool excludeDiagonal, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Validate(query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits,
            out int headDim, out int valueDim);
        if (!keyLogWeights.IsEmpty)
        {
            if (keyLogWeights.Length != key.Height)
                ThrowHelper.ThrowLength(nameof(keyLogWeights), $"empty, or one log-weight per key ({key.Height})", keyLogWeights.Length);
            foreach (T weight in keyLogWeights)
            {
                if (T.IsNaN(weight) || T.IsPositiveInfinity(weight))
                    ThrowHelper.ThrowArgument(nameof(keyLogWeights), "Key log-weights must not be NaN or +∞ (−∞ drops a key).");
            }
        }
        int degree = BlockParallel.ResolveDegree(options.MaxDegreeOfParallelism);
        long required = WorkspaceBytes(Unsafe.SizeOf<T>(), headDim, valueDim, key.Height, headCount, keyValueHeadCount,
            options.Kernel == AttentionKernel.Gaussian, degree);
        if (workspaceGiven && workspace.Length < required)
            ThrowHelper.ThrowWorkspace(nameof(workspace), required, workspace.Length);
        if (query.Height == 0) return;
        // The per-head copy of strided K and V: without a workspace up to 64 MiB, with one when it has the room.
        long packed = PackedKeyValueBytes(Unsafe.SizeOf<T>(), query.Height, key.Height, RowStride(key), RowStride(value), headDim,
            valueDim, headCount, keyValueHeadCount, options.Kernel == AttentionKernel.Gaussian, options.Causal);
        bool pack = packed > 0 && (workspaceGiven ? workspace.Length - required >= packed : packed <= MaxPackedBytesWithoutWorkspace);
        long total = required + (pack ? packed : 0);

        if (workspaceGiven)
        {
            fixed (byte* buffer = workspace)
                Execute(path, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, keyLogWeights, excludeDiagonal, buffer, degree, headDim, valueDim, pack);
        }
        else if (total <= MaxStackScratch)
        {
            byte* buffer = stackalloc byte[(int)total];
            Execute(path, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, keyLogWeights, excludeDiagonal, buffer, degree, headDim, valueDim, pack);
        }
        else
        {
            byte* buffer = (byte*)NativeMemory.Alloc((nuint)total);
            try
            {
                Execute(path, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, keyLogWeights, excludeDiagonal, buffer, degree, headDim, valueDim, pack);
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    /// <summary>The average reads per K/V row from which the per-head copy pays (<see cref="PackedKeyValueBytes"/>): 4 on
    /// Intel (and other) CPUs, 12 on AMD, where it gained nothing at 16 reads and lost 1–3% at 4–8.5 on both EPYCs measured
    /// (Zen 4 and Zen 5), while the Intel Xeon gained 3–23% there.</summary>
    internal static readonly int MinPackedReads = CpuIdentity.IsAmd ? 12 : 4;

    /// <summary>Bytes of workspace a call needs (63 bytes of slack included for the 64-byte alignment).</summary>
    public static long WorkspaceBytes(int elementSize, int headDim, int valueDim, int keyCount, int headCount,
        int keyValueHeadCount, bool gaussian, int degree)
    {
        long shared = SharedBytes(elementSize, headDim, valueDim, keyCount, headCount, keyValueHeadCount, gaussian);
        long perThread = KernelConstants.ScratchBytes(headDim, valueDim, elementSize, headCount);
        return shared + degree * perThread + 63;
    }

    /// <summary>
    /// Bytes of the per-head copy of K and V ([Hkv][n][d] and [Hkv][n][dv], contiguous) that a dot-kernel call with strided
    /// rows (multi-head token-major layouts, padded pitches) packs before its blocks run, or 0 when it would not pay: the
    /// Gaussian kernel (it reads its own centred copy of K), rows already contiguous per head, few queries (the decode
    /// kernel streams each row once), or fewer than <see cref="MinPackedReads"/> reads of each K/V row on average by
    /// (query head, 64-query block) pairs — G·⌈m/64⌉ dense, about half that causal. Token-major rows H·d elements apart put
    /// each 256–512-byte head row on its own cache lines and pages, and every reading block pays for that, while the copy
    /// costs the same per row however often it is read. Measured by in-process A/B (packed / unpacked speed, one thread):
    /// on an AMD EPYC (Zen 4; 32 KiB 8-way L1d, 1 MiB L2) 64 reads (W7) 1.07×, 32 reads (H = Hkv = 8, L = 2048;
    /// H = 16, Hkv = 8, L = 1024; W7 causal) 1.03–1.08×, 16 reads (W1) 1.00×, 8.5 reads (W2, causal) 0.975×; on an AMD EPYC
    /// Zen 5 (48 KiB L1d, 1 MiB L2) 64 reads (W7) 1.12×, 16 reads (W1) 1.01×, 8.5 reads (W2) 0.98×, 8 reads (H = 8,
    /// L = 512, d = 64; H = 16, L = 512, d = 128) 0.99×, 4 reads (H = 8, L = 256) 0.97×; on an Intel
    /// Xeon (AVX-512 FP16/AMX generation; 48 KiB 12-way L1d, 2 MiB L2), where the 2 KiB row pitch of W1 costs far more,
    /// 16 reads (W1) 1.23×, 8 reads (H = 16, L = 512, d = 128) 1.22×, 8.5 reads (W2) 1.11×, 4 reads (H = 8, L = 256)
    /// 1.03×, 2 reads (H = 8, L = 128) 0.96×, 1.5 reads (the same, causal) 0.90×.
    /// </summary>
    internal static long PackedKeyValueBytes(int elementSize, int queryCount, int keyCount, nint keyStride, nint valueStride,
        int headDim, int valueDim, int headCount, int keyValueHeadCount, bool gaussian, bool causal)
    {
        if (gaussian || (keyStride == headDim && valueStride == valueDim) || keyCount == 0) return 0;
        const int Lanes = KernelConstants.MaxBlockLanes;
        if (queryCount <= Lanes / 8) return 0;
        // Keys read by all blocks together (a causal block reads up to its last row's limit, MATH §3), times G, per key.
        long keysRead = 0;
        for (long last = Lanes; last - Lanes < queryCount; last += Lanes)
        {
            long lastRow = System.Math.Min(last, queryCount) - 1;
            keysRead += causal ? System.Math.Clamp(lastRow + (keyCount - queryCount) + 1, 0, keyCount) : keyCount;
        }
        if (keysRead * (headCount / keyValueHeadCount) < (long)MinPackedReads * keyCount) return 0;
        return KernelConstants.Align((long)keyValueHeadCount * keyCount * headDim * elementSize)
            + KernelConstants.Align((long)keyValueHeadCount * keyCount * valueDim * elementSize);
    }

    private static long SharedBytes(int elementSize, int headDim, int valueDim, int keyCount, int headCount, int keyValueHeadCount, bool gaussian)
    {
        long bytes = KernelConstants.Align((long)headCount * sizeof(double));          // sink logits per head
        bytes += KernelConstants.Align((long)keyValueHeadCount * keyCount * elementSize); // key bias
        if (gaussian)
        {
            bytes += KernelConstants.Align((long)keyValueHeadCount * headDim * elementSize);            // centres
            bytes += KernelConstants.Align((long)keyValueHeadCount * keyCount * headDim * elementSize); // centred keys
            bytes += KernelConstants.Align((long)keyValueHeadCount * sizeof(double));                 // key radii
        }
        bytes += KernelConstants.Align(DecodeConstants.PartialBytes(headCount, valueDim, keyCount));          // decode split states
        return bytes;
    }

    private static void Execute<T>(IsaPath path, ReadOnlySpan2D<T> query, ReadOnlySpan2D<T> key, ReadOnlySpan2D<T> value,
        Span2D<T> output, int headCount, int keyValueHeadCount, in AttentionOptions options, Span<T> logSumExp,
        ReadOnlySpan<T> sinkLogits, ReadOnlySpan<T> keyLogWeights, bool excludeDiagonal, byte* buffer, int degree, int headDim, int valueDim,
        bool pack)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        bool gaussian = options.Kernel == AttentionKernel.Gaussian;
        byte* aligned = (byte*)(((nuint)buffer + 63) & ~(nuint)63);
        fixed (T* q = &query.DangerousGetReference())
        fixed (T* k = &key.DangerousGetReference())
        fixed (T* v = &value.DangerousGetReference())
        fixed (T* o = &output.DangerousGetReference())
        fixed (T* lse = logSumExp)
        {
            var problem = new AttentionProblem<T>
            {
                Query = q,
                QueryStride = RowStride(query),
                Key = k,
                KeyStride = RowStride(key),
                Value = v,
                ValueStride = RowStride(value),
                KeyHeadStride = headDim,
                ValueHeadStride = valueDim,
                Output = o,
                OutputStride = RowStride((ReadOnlySpan2D<T>)output),
                LogSumExp = logSumExp.IsEmpty ? null : lse,
                QueryCount = query.Height,
                KeyCount = key.Height,
                HeadDim = headDim,
                ValueDim = valueDim,
                HeadCount = headCount,
                GroupSize = headCount / keyValueHeadCount,
                Gaussian = gaussian,
                Causal = options.Causal,
                HasKeyLogWeights = !keyLogWeights.IsEmpty,
                ExcludeDiagonal = excludeDiagonal,
            };

            CheckOverlaps(in problem, query.Width, key.Width, value.Width, output.Width, logSumExp.Length);
            byte* cursor = aligned;
            problem.SinkLogits = StoreSinks(cursor, headCount, sinkLogits, in options);
            cursor += KernelConstants.Align((long)headCount * sizeof(double));

            int n = problem.KeyCount;
            T* keyBias = (T*)cursor;
            cursor += KernelConstants.Align((long)keyValueHeadCount * n * sizeof(T));
            if (gaussian)
            {
                double h = options.Bandwidth;
                problem.Scale = VectorExp.Log2E / (h * h);
                problem.HalfInverseBandwidthSquared = 0.5 / (h * h);
                problem.Centers = (T*)cursor;
                cursor += KernelConstants.Align((long)keyValueHeadCount * headDim * sizeof(T));
                problem.CentredKeys = (T*)cursor;
                cursor += KernelConstants.Align((long)keyValueHeadCount * n * headDim * sizeof(T));
                problem.KeyBias = keyBias;
                double* keyRadius = (double*)cursor;
                cursor += KernelConstants.Align((long)keyValueHeadCount * sizeof(double));
                PrepareGaussian(ref problem, keyValueHeadCount, keyRadius);
            }
            else
            {
                problem.Scale = DotLogitScale(in options, headDim);
                if (!keyLogWeights.IsEmpty)
                {
                    problem.KeyBias = keyBias;
                    new Span<T>(keyBias, keyValueHeadCount * n).Clear();
                }
            }
            if (!keyLogWeights.IsEmpty)
            {
                for (int g = 0; g < keyValueHeadCount; g++)
                {
                    var bias = new Span<T>(keyBias + (nint)g * n, n);
                    TensorPrimitives.MultiplyAdd(keyLogWeights, T.CreateTruncating(VectorExp.Log2E), bias, bias); // base 2
                }
            }

            problem.DecodePartials = (double*)cursor;
            cursor += KernelConstants.Align(DecodeConstants.PartialBytes(headCount, valueDim, n));

            long scratchStride = KernelConstants.ScratchBytes(headDim, valueDim, sizeof(T), headCount);
            if (pack) PackKeyValues(ref problem, keyValueHeadCount, cursor + degree * scratchStride, degree);
            switch (path)
            {
                case IsaPath.Avx512:
                    RunBlocks<T, Vector512<T>, Avx512Ops<T>>(&problem, cursor, scratchStride, degree);
                    break;
                case IsaPath.Avx2:
                    RunBlocks<T, Vector256<T>, Avx2Ops<T>>(&problem, cursor, scratchStride, degree);
                    break;
                case IsaPath.Vector128:
                    RunBlocks<T, Vector128<T>, Vector128Ops<T>>(&problem, cursor, scratchStride, degree);
                    break;
                default:
                    RunBlocks<T, T, ScalarOps<T>>(&problem, cursor, scratchStride, degree);
                    break;
            }
        }
    }

    /// <summary>Copies K and V into [Hkv][n][d] and [Hkv][n][dv] at <paramref name="destination"/> (in parallel, by runs of
    /// rows) and points the problem at the copy (<see cref="PackedKeyValueBytes"/>). The values read are the same, so the
    /// results are bitwise those of the unpacked call.</summary>
    private static void PackKeyValues<T>(ref AttentionProblem<T> problem, int keyValueHeadCount, byte* destination, int degree)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = problem.KeyCount;
        int nonFinite = 0;
        var work = new PackWork<T>
        {
            NonFinite = problem.Causal ? &nonFinite : null,
            Key = problem.Key,
            KeyStride = problem.KeyStride,
            Value = problem.Value,
            ValueStride = problem.ValueStride,
            PackedKey = (T*)destination,
            PackedValue = (T*)(destination + KernelConstants.Align((long)keyValueHeadCount * n * problem.HeadDim * sizeof(T))),
            KeyCount = n,
            HeadDim = problem.HeadDim,
            ValueDim = problem.ValueDim,
            KeyValueHeadCount = keyValueHeadCount,
        };
        BlockParallel.Run(ref work, (n + PackWork<T>.RowsPerItem - 1) / PackWork<T>.RowsPerItem, degree);
        if (problem.Causal)
        {
            problem.ValuesChecked = true;
            problem.ValuesFinite = nonFinite == 0;
        }
        problem.Key = work.PackedKey;
        problem.KeyStride = problem.HeadDim;
        problem.KeyHeadStride = (nint)n * problem.HeadDim;
        problem.Value = work.PackedValue;
        problem.ValueStride = problem.ValueDim;
        problem.ValueHeadStride = (nint)n * problem.ValueDim;
    }

    private struct PackWork<T> : IBlockWork
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        public const int RowsPerItem = 64;

        /// <summary>When not null, the copy of V also checks it is finite (for the causal band, <see cref="AttentionProblem{T}.ValuesFinite"/>)
        /// and sets this to 1 if not: the values pass through registers anyway, so the check costs no second pass over V.</summary>
        public int* NonFinite;

        public T* Key;
        public nint KeyStride;
        public T* Value;
        public nint ValueStride;
        public T* PackedKey;
        public T* PackedValue;
        public int KeyCount;
        public int HeadDim;
        public int ValueDim;
        public int KeyValueHeadCount;

        /// <summary>Rows [64·item, 64·item + 64) of every kv head, token by token: each source row is read once, in order
        /// (one head at a time would revisit every page Hkv times, 256–512 bytes each).</summary>
        public readonly void Execute(int item, int worker)
        {
            int first = item * RowsPerItem;
            int end = System.Math.Min(first + RowsPerItem, KeyCount);
            // The largest exponent field seen, per 32-bit lane: all ones (the mask) only for ±∞ and NaN.
            Vector256<uint> mask = FiniteCheck<T>.Mask;
            Vector256<uint> exponents = Vector256<uint>.Zero;
            bool tailFinite = true;
            for (int j = first; j < end; j++)
            {
                for (int g = 0; g < KeyValueHeadCount; g++)
                    RowCopy.Copy((byte*)(Key + j * KeyStride + (nint)g * HeadDim), (byte*)(PackedKey + ((nint)g * KeyCount + j) * HeadDim), HeadDim * sizeof(T));
                for (int g = 0; g < KeyValueHeadCount; g++)
                {
                    T* source = Value + j * ValueStride + (nint)g * ValueDim;
                    T* destination = PackedValue + ((nint)g * KeyCount + j) * ValueDim;
                    if (NonFinite == null) RowCopy.Copy((byte*)source, (byte*)destination, ValueDim * sizeof(T));
                    else tailFinite &= FiniteCheck<T>.CopyRow(source, destination, ValueDim, mask, ref exponents);
                }
            }
            if (NonFinite != null && (!tailFinite || FiniteCheck<T>.AnyNonFinite(exponents, mask))) *NonFinite = 1;
        }
    }

    private static void RunBlocks<T, TVec, TOps>(AttentionProblem<T>* problem, byte* scratch, long scratchStride, int degree)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        if (problem->QueryCount <= DecodeMaxQueries<T, TVec, TOps>())
        {
            // Never packed (PackedKeyValueBytes): the decode layout reads the caller's token-major rows.
            System.Diagnostics.Debug.Assert(problem->KeyHeadStride == problem->HeadDim && problem->ValueHeadStride == problem->ValueDim);
            // Few queries (decode): work items of whole kv groups, each streaming its stretch of every K and V row once.
            bool gaussian = problem->Gaussian;
            var layout = new DecodeLayout<T>
            {
                Key = gaussian ? problem->CentredKeys : problem->Key,
                KeyHeadStride = gaussian ? (nint)problem->KeyCount * problem->HeadDim : problem->HeadDim,
                KeyStride = gaussian ? problem->HeadDim : problem->KeyStride,
                Value = problem->Value,
                ValueStride = problem->ValueStride,
            };
            RunDecode<T, TVec, TOps, T, NativeFormat<T, TVec, TOps>>(problem, in layout, scratch, scratchStride, degree);
            return;
        }
        int lanes = FusedAttentionKernel<T, TVec, TOps>.BlockLanes;
        int blocksPerHead = (problem->QueryCount + lanes - 1) / lanes;
        if (problem->Causal && problem->ValueDim > 0 && !problem->ValuesChecked)
        {
            // One pass over V instead of one check of the band's rows per causal block and query head: whole token rows
            // when the kv heads sit side by side in them (the caller's layout), else head by head (the packed copy).
            int kvHeads = problem->HeadCount / problem->GroupSize;
            int n = problem->KeyCount, dv = problem->ValueDim;
            bool finite = true;
            if (problem->ValueHeadStride == dv)
                finite = FiniteCheck<T>.AllFinite(problem->Value, problem->ValueStride, n, kvHeads * dv);
            else
            {
                for (int g = 0; g < kvHeads && finite; g++)
                    finite = FiniteCheck<T>.AllFinite(problem->Value + g * problem->ValueHeadStride, problem->ValueStride, n, dv);
            }
            problem->ValuesFinite = finite;
        }
        var work = new BlockWork<T, TVec, TOps>
        {
            Problem = problem,
            Scratch = scratch,
            ScratchStride = scratchStride,
            BlocksPerHead = blocksPerHead,
        };
        BlockParallel.Run(ref work, blocksPerHead * problem->HeadCount, degree);
    }

    /// <summary>Query counts up to which a call runs the decode kernel: the row-kernel threshold (lanes / 8), at least 1.</summary>
    internal static int DecodeMaxQueries<T, TVec, TOps>()
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
        => System.Math.Max(1, FusedAttentionKernel<T, TVec, TOps>.RowKernelMaxQueries);

    /// <summary>Runs the decode kernel over (row block, head block) items of constant size (<see cref="DecodeConstants"/>).</summary>
    private static void RunDecode<T, TVec, TOps, TKv, TFormat>(AttentionProblem<T>* problem, in DecodeLayout<TKv> layout,
        byte* scratch, long scratchStride, int degree)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
        where TKv : unmanaged
        where TFormat : struct, IKeyValueFormat<T, TVec, TKv>
    {
        int rowsPerItem = System.Math.Min(problem->QueryCount, DecodeConstants.RowsPerItem);
        int headsPerItem = DecodeConstants.HeadsPerItem(problem->HeadCount, problem->GroupSize, rowsPerItem);
        int headItems = (problem->HeadCount + headsPerItem - 1) / headsPerItem;
        int rowItems = (problem->QueryCount + rowsPerItem - 1) / rowsPerItem;
        int splits = DecodeConstants.KeySplits(problem->QueryCount, problem->KeyCount, out int chunksPerSplit);
        var work = new DecodeWork<T, TVec, TOps, TKv, TFormat>
        {
            Problem = problem,
            Layout = layout,
            Scratch = scratch,
            ScratchStride = scratchStride,
            RowsPerItem = rowsPerItem,
            HeadsPerItem = headsPerItem,
            HeadItems = headItems,
            Splits = splits,
            ChunksPerSplit = chunksPerSplit,
        };
        BlockParallel.Run(ref work, headItems * rowItems * splits, degree);
        if (splits == 1) return;
        // The split states merge in split order, the same for every thread count.
        for (int head = 0; head < problem->HeadCount; head++)
            for (int row = 0; row < problem->QueryCount; row++)
                DecodeKernel<T, TVec, TOps, TKv, TFormat>.MergeSplits(in *problem, problem->DecodePartials, splits, head, row);
    }

    private struct DecodeWork<T, TVec, TOps, TKv, TFormat> : IBlockWork
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
        where TKv : unmanaged
        where TFormat : struct, IKeyValueFormat<T, TVec, TKv>
    {
        public AttentionProblem<T>* Problem;
        public DecodeLayout<TKv> Layout;
        public byte* Scratch;
        public long ScratchStride;
        public int RowsPerItem;
        public int HeadsPerItem;
        public int HeadItems;
        public int Splits;
        public int ChunksPerSplit;

        public readonly void Execute(int item, int worker)
        {
            int split = item % Splits;
            int block = item / Splits;
            int firstHead = block % HeadItems * HeadsPerItem;
            int firstRow = block / HeadItems * RowsPerItem;
            DecodeKernel<T, TVec, TOps, TKv, TFormat>.RunItem(in *Problem, in Layout, firstHead,
                System.Math.Min(HeadsPerItem, Problem->HeadCount - firstHead), firstRow,
                System.Math.Min(RowsPerItem, Problem->QueryCount - firstRow), split, Splits, ChunksPerSplit,
                Problem->DecodePartials, Scratch + worker * ScratchStride);
        }
    }

    private struct BlockWork<T, TVec, TOps> : IBlockWork
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        public AttentionProblem<T>* Problem;
        public byte* Scratch;
        public long ScratchStride;
        public int BlocksPerHead;

        public readonly void Execute(int block, int worker) =>
            FusedAttentionKernel<T, TVec, TOps>.RunBlock(in *Problem, block / BlocksPerHead, block % BlocksPerHead,
                Scratch + worker * ScratchStride);
    }

    /// <summary>
    /// Once per call (MATH §2): per kv head the key mean c, the centred keys k̃ = k − c (so the expansion
    /// −‖q̃−k̃‖²/(2h²) = q̃·k̃/h² − ‖k̃‖²/(2h²) − ‖q̃‖²/(2h²) stays accurate at any common offset) and the key bias
    /// −‖k̃‖²/(2h²); per query head, whether the expansion is accurate enough. With R = max‖q̃‖ + max‖k̃‖ the expanded
    /// logit carries an absolute rounding error of about u·R²/(2h²); where that exceeds 1e-4 (tiny bandwidths, or data far
    /// from its mean) the kernel computes Σ(q̃−k̃)² directly. MATH §2 states the bound with γ_{d+2}; that worst case is
    /// ≈ d times the typical error and would send well-conditioned d = 64 calls to the slower path, so the typical-error
    /// estimate u·R² is used instead. The decision is per call, since kv heads are shared. Vector work through <see cref="TensorPrimitives"/>; O((m + n)·d) in all.
    /// </summary>
    private static void PrepareGaussian<T>(ref AttentionProblem<T> p, int keyValueHeadCount, double* keyRadius)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int d = p.HeadDim;
        int n = p.KeyCount;
        int m = p.QueryCount;
        double unitRoundoff = sizeof(T) == 4 ? 1.0 / (1 << 24) : 1.0 / (1L << 53);
        T negativeHalf = T.CreateTruncating(-p.HalfInverseBandwidthSquared * VectorExp.Log2E); // the key bias is in base 2
        for (int g = 0; g < keyValueHeadCount; g++)
        {
            var center = new Span<T>(p.Centers + (nint)g * d, d);
            center.Clear();
            // Any centre is exact (‖q̃ − k̃‖ = ‖q − k‖); the mean of the finite key rows keeps a NaN or ±∞ key, which may
            // be masked, from reaching every other key through c.
            int finiteRows = 0;
            for (int j = 0; j < n; j++)
            {
                var row = new ReadOnlySpan<T>(p.Key + (nint)j * p.KeyStride + (nint)g * d, d);
                if (!T.IsFinite(TensorPrimitives.Sum(row))) continue;
                TensorPrimitives.Add(center, row, center);
                finiteRows++;
            }
            if (finiteRows > 0) TensorPrimitives.Multiply(center, T.One / T.CreateTruncating(finiteRows), center);

            double radius = 0;
            for (int j = 0; j < n; j++)
            {
                var centred = new Span<T>(p.CentredKeys + ((nint)g * n + j) * d, d);
                TensorPrimitives.Subtract(new ReadOnlySpan<T>(p.Key + (nint)j * p.KeyStride + (nint)g * d, d), center, centred);
                T squaredNorm = TensorPrimitives.SumOfSquares<T>(centred);
                p.KeyBias[(nint)g * n + j] = squaredNorm * negativeHalf;
                radius = MaxIgnoringNaN(radius, double.CreateTruncating(squaredNorm));
            }
            keyRadius[g] = System.Math.Sqrt(radius);
        }

        bool direct = false;
        for (int head = 0; head < p.HeadCount; head++)
        {
            int g = head / p.GroupSize;
            var center = new ReadOnlySpan<T>(p.Centers + (nint)g * d, d);
            double queryRadius = 0;
            for (int i = 0; i < m; i++)
            {
                T distance = TensorPrimitives.Distance(new ReadOnlySpan<T>(p.Query + (nint)i * p.QueryStride + (nint)head * d, d), center);
                queryRadius = MaxIgnoringNaN(queryRadius, double.CreateTruncating(distance));
            }
            double r = keyRadius[g] + queryRadius;
            direct |= unitRoundoff * r * r * p.HalfInverseBandwidthSquared > ExpansionErrorLimit;
        }
        p.DirectDifferences = direct;
        if (direct) new Span<T>(p.KeyBias, keyValueHeadCount * n).Clear(); // direct logits need no key bias
    }

    /// <summary>max(a, b) ignoring a NaN b: a NaN row is NaN on either path and must not decide how the other rows are
    /// computed (Math.Max would propagate it and turn the expansion test off). A +∞ radius does choose direct
    /// differences, which give the exact −∞ logits of an infinite row.</summary>
    private static double MaxIgnoringNaN(double a, double b) => b > a ? b : a;

    /// <summary>The per-head sink logits in double at <paramref name="destination"/> (the per-head ones, else the options'
    /// one for every head), or null when the call has no sink.</summary>
    private static double* StoreSinks<T>(byte* destination, int headCount, ReadOnlySpan<T> sinkLogits, in AttentionOptions options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (sinkLogits.IsEmpty && !options.SinkLogit.HasValue) return null;
        double* sinks = (double*)destination;
        for (int h = 0; h < headCount; h++)
            sinks[h] = sinkLogits.IsEmpty ? options.SinkLogit!.Value : double.CreateTruncating(sinkLogits[h]);
        return sinks;
    }

    /// <summary>The dot kernel's query scale: the logit scale (default 1/√d) times log₂e, since the kernels keep their
    /// logits in base 2 (<see cref="VectorExp"/>).</summary>
    private static double DotLogitScale(in AttentionOptions options, int headDim)
        => (options.Scale ?? 1.0 / System.Math.Sqrt(headDim)) * VectorExp.Log2E;

    /// <summary>Elements between the starts of consecutive rows.</summary>
    private static nint RowStride<T>(ReadOnlySpan2D<T> span)
    {
        if (span.Height < 2) return span.Width;
        return (nint)(Unsafe.ByteOffset(ref span.DangerousGetReferenceAt(0, 0), ref span.DangerousGetReferenceAt(1, 0)) / Unsafe.SizeOf<T>());
    }
}
