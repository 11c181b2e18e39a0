using System;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;

namespace FastKernelAttention.Native;

/// <summary>The attention exports of fka.h: forward (single- and multi-head, float and double, with and without a caller
/// workspace) and the workspace size queries. Each validates every argument before it builds a span and catches every
/// exception, so nothing but a status code crosses the boundary.</summary>
internal static unsafe class ExportsAttention
{
    /// <summary>A validated call: pointers, sizes and pitches in elements, ready to become spans.</summary>
    private struct ForwardArgs
    {
        public void* Query, Key, Value, Output, LogSumExp, SinkLogits, Workspace;
        public int QueryCount, KeyCount, HeadCount, KeyValueHeadCount, QueryWidth, KeyWidth, ValueWidth, OutputWidth;
        public int QueryPitch, KeyPitch, ValuePitch, OutputPitch, WorkspaceBytes;
        public bool MultiHead, WorkspaceGiven;
        public AttentionOptions Options;
    }

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_f32")]
    public static int ForwardF32(long queryCount, long keyCount, long headDim, long valueDim,
        float* query, long queryPitch, float* key, long keyPitch, float* value, long valuePitch,
        float* output, long outputPitch, float* logSumExp, FkaAttentionOptions* options)
        => Forward("fka_attention_forward_f32", sizeof(float), queryCount, keyCount, 1, 1, headDim, valueDim, query, queryPitch,
            key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, null, options, null, 0, multiHead: false, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_f64")]
    public static int ForwardF64(long queryCount, long keyCount, long headDim, long valueDim,
        double* query, long queryPitch, double* key, long keyPitch, double* value, long valuePitch,
        double* output, long outputPitch, double* logSumExp, FkaAttentionOptions* options)
        => Forward("fka_attention_forward_f64", sizeof(double), queryCount, keyCount, 1, 1, headDim, valueDim, query, queryPitch,
            key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, null, options, null, 0, multiHead: false, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_ws_f32")]
    public static int ForwardWorkspaceF32(long queryCount, long keyCount, long headDim, long valueDim,
        float* query, long queryPitch, float* key, long keyPitch, float* value, long valuePitch,
        float* output, long outputPitch, float* logSumExp, FkaAttentionOptions* options, void* workspace, long workspaceBytes)
        => Forward("fka_attention_forward_ws_f32", sizeof(float), queryCount, keyCount, 1, 1, headDim, valueDim, query, queryPitch,
            key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, null, options, workspace, workspaceBytes, multiHead: false, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_ws_f64")]
    public static int ForwardWorkspaceF64(long queryCount, long keyCount, long headDim, long valueDim,
        double* query, long queryPitch, double* key, long keyPitch, double* value, long valuePitch,
        double* output, long outputPitch, double* logSumExp, FkaAttentionOptions* options, void* workspace, long workspaceBytes)
        => Forward("fka_attention_forward_ws_f64", sizeof(double), queryCount, keyCount, 1, 1, headDim, valueDim, query, queryPitch,
            key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, null, options, workspace, workspaceBytes, multiHead: false, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_multihead_f32")]
    public static int ForwardMultiHeadF32(long queryCount, long keyCount, long headCount, long keyValueHeadCount, long headDim, long valueDim,
        float* query, long queryPitch, float* key, long keyPitch, float* value, long valuePitch,
        float* output, long outputPitch, float* logSumExp, float* sinkLogits, FkaAttentionOptions* options)
        => Forward("fka_attention_forward_multihead_f32", sizeof(float), queryCount, keyCount, headCount, keyValueHeadCount, headDim, valueDim,
            query, queryPitch, key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, sinkLogits, options, null, 0, multiHead: true, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_multihead_f64")]
    public static int ForwardMultiHeadF64(long queryCount, long keyCount, long headCount, long keyValueHeadCount, long headDim, long valueDim,
        double* query, long queryPitch, double* key, long keyPitch, double* value, long valuePitch,
        double* output, long outputPitch, double* logSumExp, double* sinkLogits, FkaAttentionOptions* options)
        => Forward("fka_attention_forward_multihead_f64", sizeof(double), queryCount, keyCount, headCount, keyValueHeadCount, headDim, valueDim,
            query, queryPitch, key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, sinkLogits, options, null, 0, multiHead: true, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_multihead_ws_f32")]
    public static int ForwardMultiHeadWorkspaceF32(long queryCount, long keyCount, long headCount, long keyValueHeadCount, long headDim, long valueDim,
        float* query, long queryPitch, float* key, long keyPitch, float* value, long valuePitch,
        float* output, long outputPitch, float* logSumExp, float* sinkLogits, FkaAttentionOptions* options, void* workspace, long workspaceBytes)
        => Forward("fka_attention_forward_multihead_ws_f32", sizeof(float), queryCount, keyCount, headCount, keyValueHeadCount, headDim, valueDim,
            query, queryPitch, key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, sinkLogits, options, workspace, workspaceBytes, multiHead: true, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_attention_forward_multihead_ws_f64")]
    public static int ForwardMultiHeadWorkspaceF64(long queryCount, long keyCount, long headCount, long keyValueHeadCount, long headDim, long valueDim,
        double* query, long queryPitch, double* key, long keyPitch, double* value, long valuePitch,
        double* output, long outputPitch, double* logSumExp, double* sinkLogits, FkaAttentionOptions* options, void* workspace, long workspaceBytes)
        => Forward("fka_attention_forward_multihead_ws_f64", sizeof(double), queryCount, keyCount, headCount, keyValueHeadCount, headDim, valueDim,
            query, queryPitch, key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, sinkLogits, options, workspace, workspaceBytes, multiHead: true, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_workspace_size_f32")]
    public static int WorkspaceSizeF32(long headDim, long valueDim, long keyCount, long headCount, long keyValueHeadCount,
        FkaAttentionOptions* options, long* bytes)
        => WorkspaceSize("fka_workspace_size_f32", isDouble: false, headDim, valueDim, keyCount, headCount, keyValueHeadCount, options, bytes);

    [UnmanagedCallersOnly(EntryPoint = "fka_workspace_size_f64")]
    public static int WorkspaceSizeF64(long headDim, long valueDim, long keyCount, long headCount, long keyValueHeadCount,
        FkaAttentionOptions* options, long* bytes)
        => WorkspaceSize("fka_workspace_size_f64", isDouble: true, headDim, valueDim, keyCount, headCount, keyValueHeadCount, options, bytes);

    private static int WorkspaceSize(string function, bool isDouble, long headDim, long valueDim, long keyCount, long headCount,
        long keyValueHeadCount, FkaAttentionOptions* nativeOptions, long* bytes)
    {
        try
        {
            LastError.Clear();
            if (bytes == null) return LastError.Set(FkaStatus.NullPointer, $"{function}: bytes (the result) is NULL.");
            *bytes = 0;
            int status;
            if ((status = NativeArguments.Size(function, "head_dim", headDim, 1, out int d)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "value_dim", valueDim, 0, out int dv)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "key_count", keyCount, 0, out int n)) != FkaStatus.Ok) return status;
            if ((status = HeadCounts(function, headCount, keyValueHeadCount, out int h, out int hkv)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Options(function, nativeOptions, out AttentionOptions options)) != FkaStatus.Ok) return status;
            try
            {
                *bytes = isDouble
                    ? Attention.GetWorkspaceSize<double>(d, dv, n, in options, h, hkv)
                    : Attention.GetWorkspaceSize<float>(d, dv, n, in options, h, hkv);
            }
            catch (ArgumentOutOfRangeException e) when (e.ParamName == "headDim")
            {
                // Every size was checked above, so this is the "more than 2 GiB" limit of the managed query.
                return LastError.Set(FkaStatus.Overflow, $"{function}: {e.Message}");
            }
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    private static int HeadCounts(string function, long headCount, long keyValueHeadCount, out int h, out int hkv)
    {
        hkv = 0;
        int status;
        if ((status = NativeArguments.Size(function, "head_count", headCount, 1, out h)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Size(function, "kv_head_count", keyValueHeadCount, 1, out hkv)) != FkaStatus.Ok) return status;
        if (h % hkv != 0)
            return LastError.Set(FkaStatus.Shape, $"{function}: kv_head_count = {hkv} does not divide head_count = {h}.");
        return FkaStatus.Ok;
    }

    private static int Forward(string function, int elementSize, long queryCount, long keyCount, long headCount, long keyValueHeadCount,
        long headDim, long valueDim, void* query, long queryPitch, void* key, long keyPitch, void* value, long valuePitch,
        void* output, long outputPitch, void* logSumExp, void* sinkLogits, FkaAttentionOptions* nativeOptions,
        void* workspace, long workspaceBytes, bool multiHead, bool workspaceGiven)
    {
        try
        {
            LastError.Clear();
            ForwardArgs args = default;
            int status = Validate(function, elementSize, queryCount, keyCount, headCount, keyValueHeadCount, headDim, valueDim,
                query, queryPitch, key, keyPitch, value, valuePitch, output, outputPitch, logSumExp, sinkLogits, nativeOptions,
                workspace, workspaceBytes, ref args);
            if (status != FkaStatus.Ok) return status;
            args.MultiHead = multiHead;
            args.WorkspaceGiven = workspaceGiven;
            if (elementSize == sizeof(float)) RunSingle(in args);
            else RunDouble(in args);
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    /// <summary>Every check, in the order fka.h documents: sizes (SHAPE, OVERFLOW), widths (OVERFLOW), then per matrix its pitch
    /// (SHAPE, OVERFLOW), extent (OVERFLOW) and pointer (NULL_POINTER), the optional arrays, the workspace, the options (ARGUMENT).</summary>
    private static int Validate(string function, int elementSize, long queryCount, long keyCount, long headCount, long keyValueHeadCount,
        long headDim, long valueDim, void* query, long queryPitch, void* key, long keyPitch, void* value, long valuePitch,
        void* output, long outputPitch, void* logSumExp, void* sinkLogits, FkaAttentionOptions* nativeOptions,
        void* workspace, long workspaceBytes, ref ForwardArgs args)
    {
        int status;
        if ((status = NativeArguments.Size(function, "query_count", queryCount, 0, out int m)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Size(function, "key_count", keyCount, 0, out int n)) != FkaStatus.Ok) return status;
        if ((status = HeadCounts(function, headCount, keyValueHeadCount, out int h, out int hkv)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Size(function, "head_dim", headDim, 1, out int d)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Size(function, "value_dim", valueDim, 0, out int dv)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Product(function, "head_count·head_dim (query width)", h, d, out args.QueryWidth)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Product(function, "kv_head_count·head_dim (key width)", hkv, d, out args.KeyWidth)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Product(function, "kv_head_count·value_dim (value width)", hkv, dv, out args.ValueWidth)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Product(function, "head_count·value_dim (output width)", h, dv, out args.OutputWidth)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Product(function, "head_count·query_count (log_sum_exp length)", h, m, out int lseLength)) != FkaStatus.Ok) return status;

        if ((status = NativeArguments.Matrix(function, "query", query, m, args.QueryWidth, queryPitch, elementSize, out args.QueryPitch)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Matrix(function, "key", key, n, args.KeyWidth, keyPitch, elementSize, out args.KeyPitch)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Matrix(function, "value", value, n, args.ValueWidth, valuePitch, elementSize, out args.ValuePitch)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Matrix(function, "output", output, m, args.OutputWidth, outputPitch, elementSize, out args.OutputPitch)) != FkaStatus.Ok) return status;

        if (workspaceBytes < 0)
            return LastError.Set(FkaStatus.Workspace, $"{function}: workspace_bytes must not be negative, got {workspaceBytes}.");
        if (workspace == null && workspaceBytes > 0)
            return LastError.Set(FkaStatus.NullPointer, $"{function}: workspace is NULL but workspace_bytes = {workspaceBytes}.");

        if ((status = NativeArguments.Options(function, nativeOptions, out args.Options)) != FkaStatus.Ok) return status;

        args.Query = query; args.Key = key; args.Value = value; args.Output = output;
        args.LogSumExp = logSumExp;
        args.SinkLogits = sinkLogits;
        args.Workspace = workspace;
        args.WorkspaceBytes = (int)Math.Min(workspaceBytes, int.MaxValue); // a larger buffer is used up to 2 GiB − 1, the most a call needs
        args.QueryCount = m; args.KeyCount = n; args.HeadCount = h; args.KeyValueHeadCount = hkv;
        return FkaStatus.Ok;
    }

    /// <summary>Builds the float spans (CommunityToolkit's pitch argument is the gap between rows: pitch − width) and calls the managed API.</summary>
    private static void RunSingle(in ForwardArgs a)
    {
        var query = new ReadOnlySpan2D<float>(a.Query, a.QueryCount, a.QueryWidth, a.QueryPitch - a.QueryWidth);
        var key = new ReadOnlySpan2D<float>(a.Key, a.KeyCount, a.KeyWidth, a.KeyPitch - a.KeyWidth);
        var value = new ReadOnlySpan2D<float>(a.Value, a.KeyCount, a.ValueWidth, a.ValuePitch - a.ValueWidth);
        var output = new Span2D<float>(a.Output, a.QueryCount, a.OutputWidth, a.OutputPitch - a.OutputWidth);
        Span<float> logSumExp = a.LogSumExp == null ? default : new Span<float>(a.LogSumExp, a.HeadCount * a.QueryCount);
        ReadOnlySpan<float> sinkLogits = a.SinkLogits == null ? default : new ReadOnlySpan<float>(a.SinkLogits, a.HeadCount);
        Span<byte> workspace = a.Workspace == null ? default : new Span<byte>(a.Workspace, a.WorkspaceBytes);
        Call(in a, query, key, value, output, logSumExp, sinkLogits, workspace);
    }

    /// <summary>The double twin of <see cref="RunSingle"/>.</summary>
    private static void RunDouble(in ForwardArgs a)
    {
        var query = new ReadOnlySpan2D<double>(a.Query, a.QueryCount, a.QueryWidth, a.QueryPitch - a.QueryWidth);
        var key = new ReadOnlySpan2D<double>(a.Key, a.KeyCount, a.KeyWidth, a.KeyPitch - a.KeyWidth);
        var value = new ReadOnlySpan2D<double>(a.Value, a.KeyCount, a.ValueWidth, a.ValuePitch - a.ValueWidth);
        var output = new Span2D<double>(a.Output, a.QueryCount, a.OutputWidth, a.OutputPitch - a.OutputWidth);
        Span<double> logSumExp = a.LogSumExp == null ? default : new Span<double>(a.LogSumExp, a.HeadCount * a.QueryCount);
        ReadOnlySpan<double> sinkLogits = a.SinkLogits == null ? default : new ReadOnlySpan<double>(a.SinkLogits, a.HeadCount);
        Span<byte> workspace = a.Workspace == null ? default : new Span<byte>(a.Workspace, a.WorkspaceBytes);
        Call(in a, query, key, value, output, logSumExp, sinkLogits, workspace);
    }

    private static void Call(in ForwardArgs a, ReadOnlySpan2D<float> query, ReadOnlySpan2D<float> key, ReadOnlySpan2D<float> value,
        Span2D<float> output, Span<float> logSumExp, ReadOnlySpan<float> sinkLogits, Span<byte> workspace)
    {
        if (a.MultiHead)
        {
            if (a.WorkspaceGiven) Attention.ForwardMultiHead(query, key, value, output, a.HeadCount, a.KeyValueHeadCount, in a.Options, logSumExp, sinkLogits, workspace);
            else Attention.ForwardMultiHead(query, key, value, output, a.HeadCount, a.KeyValueHeadCount, in a.Options, logSumExp, sinkLogits);
        }
        else
        {
            if (a.WorkspaceGiven) Attention.Forward(query, key, value, output, in a.Options, logSumExp, workspace);
            else Attention.Forward(query, key, value, output, in a.Options, logSumExp);
        }
    }

    private static void Call(in ForwardArgs a, ReadOnlySpan2D<double> query, ReadOnlySpan2D<double> key, ReadOnlySpan2D<double> value,
        Span2D<double> output, Span<double> logSumExp, ReadOnlySpan<double> sinkLogits, Span<byte> workspace)
    {
        if (a.MultiHead)
        {
            if (a.WorkspaceGiven) Attention.ForwardMultiHead(query, key, value, output, a.HeadCount, a.KeyValueHeadCount, in a.Options, logSumExp, sinkLogits, workspace);
            else Attention.ForwardMultiHead(query, key, value, output, a.HeadCount, a.KeyValueHeadCount, in a.Options, logSumExp, sinkLogits);
        }
        else
        {
            if (a.WorkspaceGiven) Attention.Forward(query, key, value, output, in a.Options, logSumExp, workspace);
            else Attention.Forward(query, key, value, output, in a.Options, logSumExp);
        }
    }
}
