using System;
using System.Numerics;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;

namespace FastKernelAttention.Native;

/// <summary>The Nadaraya–Watson exports of fka.h (MATH §6): predict with its optional diagnostics, the leave-one-out
/// cross-validation score, bandwidth selection, and the workspace size queries. Each validates every argument before it
/// builds a span and catches every exception, so nothing but a status code crosses the boundary.</summary>
internal static unsafe class ExportsNadarayaWatson
{
    /// <summary>A validated predict call: pointers, sizes and pitches in elements, ready to become spans.</summary>
    private struct PredictArgs
    {
        public void* Queries, Samples, Responses, Bandwidths, LogWeights, Output, LogSumExp, EffectiveSampleSize, Entropy, LocalVariance, Workspace;
        public int QueryCount, SampleCount, Dimension, ResponseCount, BandwidthCount;
        public int QueriesPitch, SamplesPitch, ResponsesPitch, OutputPitch, LocalVariancePitch, WorkspaceBytes;
        public bool WorkspaceGiven;
    }

    /// <summary>A validated cross-validation or bandwidth-selection call.</summary>
    private struct SampleArgs
    {
        public void* Samples, Responses, Bandwidths, Workspace;
        public double* Score;
        public int SampleCount, Dimension, ResponseCount, BandwidthCount, SamplesPitch, ResponsesPitch, WorkspaceBytes;
        public bool WorkspaceGiven;
    }

    /// <summary>Names of the predict arguments in <see cref="NativeArguments.NoOverlap"/> order: inputs, then outputs.</summary>
    private static readonly string[] PredictNames =
        ["queries", "samples", "responses", "bandwidths", "sample_log_weights",
         "output", "log_sum_exp", "effective_sample_size", "entropy", "local_variance", "workspace"];

    private const int PredictFirstOutput = 5;

    private static readonly string[] CrossValidationNames = ["samples", "responses", "bandwidths", "score", "workspace"];

    private static readonly string[] SelectNames = ["samples", "responses", "bandwidths", "cv"];

    // ---- predict ----------------------------------------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_predict_f32")]
    public static int PredictF32(long queryCount, long sampleCount, long dimension, long responseCount,
        float* queries, long queriesPitch, float* samples, long samplesPitch, float* responses, long responsesPitch,
        float* bandwidths, long bandwidthCount, float* sampleLogWeights, float* output, long outputPitch,
        float* logSumExp, float* effectiveSampleSize, float* entropy, float* localVariance, long localVariancePitch)
        => Predict<float>("fka_nw_predict_f32", queryCount, sampleCount, dimension, responseCount, queries, queriesPitch,
            samples, samplesPitch, responses, responsesPitch, bandwidths, bandwidthCount, sampleLogWeights, output, outputPitch,
            logSumExp, effectiveSampleSize, entropy, localVariance, localVariancePitch, null, 0, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_predict_f64")]
    public static int PredictF64(long queryCount, long sampleCount, long dimension, long responseCount,
        double* queries, long queriesPitch, double* samples, long samplesPitch, double* responses, long responsesPitch,
        double* bandwidths, long bandwidthCount, double* sampleLogWeights, double* output, long outputPitch,
        double* logSumExp, double* effectiveSampleSize, double* entropy, double* localVariance, long localVariancePitch)
        => Predict<double>("fka_nw_predict_f64", queryCount, sampleCount, dimension, responseCount, queries, queriesPitch,
            samples, samplesPitch, responses, responsesPitch, bandwidths, bandwidthCount, sampleLogWeights, output, outputPitch,
            logSumExp, effectiveSampleSize, entropy, localVariance, localVariancePitch, null, 0, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_predict_ws_f32")]
    public static int PredictWorkspaceF32(long queryCount, long sampleCount, long dimension, long responseCount,
        float* queries, long queriesPitch, float* samples, long samplesPitch, float* responses, long responsesPitch,
        float* bandwidths, long bandwidthCount, float* sampleLogWeights, float* output, long outputPitch,
        float* logSumExp, float* effectiveSampleSize, float* entropy, float* localVariance, long localVariancePitch,
        void* workspace, long workspaceBytes)
        => Predict<float>("fka_nw_predict_ws_f32", queryCount, sampleCount, dimension, responseCount, queries, queriesPitch,
            samples, samplesPitch, responses, responsesPitch, bandwidths, bandwidthCount, sampleLogWeights, output, outputPitch,
            logSumExp, effectiveSampleSize, entropy, localVariance, localVariancePitch, workspace, workspaceBytes, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_predict_ws_f64")]
    public static int PredictWorkspaceF64(long queryCount, long sampleCount, long dimension, long responseCount,
        double* queries, long queriesPitch, double* samples, long samplesPitch, double* responses, long responsesPitch,
        double* bandwidths, long bandwidthCount, double* sampleLogWeights, double* output, long outputPitch,
        double* logSumExp, double* effectiveSampleSize, double* entropy, double* localVariance, long localVariancePitch,
        void* workspace, long workspaceBytes)
        => Predict<double>("fka_nw_predict_ws_f64", queryCount, sampleCount, dimension, responseCount, queries, queriesPitch,
            samples, samplesPitch, responses, responsesPitch, bandwidths, bandwidthCount, sampleLogWeights, output, outputPitch,
            logSumExp, effectiveSampleSize, entropy, localVariance, localVariancePitch, workspace, workspaceBytes, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_predict_workspace_size_f32")]
    public static int PredictWorkspaceSizeF32(long queryCount, long sampleCount, long dimension, long responseCount, long bandwidthCount,
        int weighted, int effectiveSampleSize, int entropy, int localVariance, long* bytes)
        => PredictWorkspaceSize<float>("fka_nw_predict_workspace_size_f32", queryCount, sampleCount, dimension, responseCount,
            bandwidthCount, weighted, effectiveSampleSize, entropy, localVariance, bytes);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_predict_workspace_size_f64")]
    public static int PredictWorkspaceSizeF64(long queryCount, long sampleCount, long dimension, long responseCount, long bandwidthCount,
        int weighted, int effectiveSampleSize, int entropy, int localVariance, long* bytes)
        => PredictWorkspaceSize<double>("fka_nw_predict_workspace_size_f64", queryCount, sampleCount, dimension, responseCount,
            bandwidthCount, weighted, effectiveSampleSize, entropy, localVariance, bytes);

    // ---- cross-validation -------------------------------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_cross_validation_f32")]
    public static int CrossValidationF32(long sampleCount, long dimension, long responseCount, float* samples, long samplesPitch,
        float* responses, long responsesPitch, float* bandwidths, long bandwidthCount, double* score)
        => CrossValidation<float>("fka_nw_cross_validation_f32", sampleCount, dimension, responseCount, samples, samplesPitch,
            responses, responsesPitch, bandwidths, bandwidthCount, score, null, 0, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_cross_validation_f64")]
    public static int CrossValidationF64(long sampleCount, long dimension, long responseCount, double* samples, long samplesPitch,
        double* responses, long responsesPitch, double* bandwidths, long bandwidthCount, double* score)
        => CrossValidation<double>("fka_nw_cross_validation_f64", sampleCount, dimension, responseCount, samples, samplesPitch,
            responses, responsesPitch, bandwidths, bandwidthCount, score, null, 0, workspaceGiven: false);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_cross_validation_ws_f32")]
    public static int CrossValidationWorkspaceF32(long sampleCount, long dimension, long responseCount, float* samples, long samplesPitch,
        float* responses, long responsesPitch, float* bandwidths, long bandwidthCount, double* score, void* workspace, long workspaceBytes)
        => CrossValidation<float>("fka_nw_cross_validation_ws_f32", sampleCount, dimension, responseCount, samples, samplesPitch,
            responses, responsesPitch, bandwidths, bandwidthCount, score, workspace, workspaceBytes, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_cross_validation_ws_f64")]
    public static int CrossValidationWorkspaceF64(long sampleCount, long dimension, long responseCount, double* samples, long samplesPitch,
        double* responses, long responsesPitch, double* bandwidths, long bandwidthCount, double* score, void* workspace, long workspaceBytes)
        => CrossValidation<double>("fka_nw_cross_validation_ws_f64", sampleCount, dimension, responseCount, samples, samplesPitch,
            responses, responsesPitch, bandwidths, bandwidthCount, score, workspace, workspaceBytes, workspaceGiven: true);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_cross_validation_workspace_size_f32")]
    public static int CrossValidationWorkspaceSizeF32(long sampleCount, long dimension, long responseCount, long bandwidthCount, long* bytes)
        => CrossValidationWorkspaceSize<float>("fka_nw_cross_validation_workspace_size_f32", sampleCount, dimension, responseCount, bandwidthCount, bytes);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_cross_validation_workspace_size_f64")]
    public static int CrossValidationWorkspaceSizeF64(long sampleCount, long dimension, long responseCount, long bandwidthCount, long* bytes)
        => CrossValidationWorkspaceSize<double>("fka_nw_cross_validation_workspace_size_f64", sampleCount, dimension, responseCount, bandwidthCount, bytes);

    // ---- bandwidth selection ----------------------------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_select_bandwidth_f32")]
    public static int SelectBandwidthF32(long sampleCount, long dimension, long responseCount, float* samples, long samplesPitch,
        float* responses, long responsesPitch, float* bandwidths, long bandwidthCount, double* cv)
        => SelectBandwidth<float>("fka_nw_select_bandwidth_f32", sampleCount, dimension, responseCount, samples, samplesPitch,
            responses, responsesPitch, bandwidths, bandwidthCount, cv);

    [UnmanagedCallersOnly(EntryPoint = "fka_nw_select_bandwidth_f64")]
    public static int SelectBandwidthF64(long sampleCount, long dimension, long responseCount, double* samples, long samplesPitch,
        double* responses, long responsesPitch, double* bandwidths, long bandwidthCount, double* cv)
        => SelectBandwidth<double>("fka_nw_select_bandwidth_f64", sampleCount, dimension, responseCount, samples, samplesPitch,
            responses, responsesPitch, bandwidths, bandwidthCount, cv);

    // ---- implementation ---------------------------------------------------------------------------------------------

    /// <summary>bandwidth_count must be 1 (one h) or d (one per dimension): FKA_ERR_SHAPE otherwise.</summary>
    private static int BandwidthCount(string function, long bandwidthCount, int dimension, out int count)
    {
        count = 0;
        if (bandwidthCount != 1 && bandwidthCount != dimension)
            return LastError.Set(FkaStatus.Shape, $"{function}: bandwidth_count must be 1 (one bandwidth) or dimension = {dimension} (one per dimension), got {bandwidthCount}.");
        count = (int)bandwidthCount;
        return FkaStatus.Ok;
    }

    /// <summary>Sizes shared by every call: sample_count ≥ <paramref name="minimumSamples"/>, dimension ≥ 1, response_count ≥ 1,
    /// bandwidth_count 1 or d.</summary>
    private static int SampleSizes(string function, long sampleCount, long minimumSamples, long dimension, long responseCount,
        long bandwidthCount, out int n, out int d, out int p, out int bandwidths)
    {
        d = p = bandwidths = 0;
        int status;
        if ((status = NativeArguments.Size(function, "sample_count", sampleCount, minimumSamples, out n)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Size(function, "dimension", dimension, 1, out d)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Size(function, "response_count", responseCount, 1, out p)) != FkaStatus.Ok) return status;
        return BandwidthCount(function, bandwidthCount, d, out bandwidths);
    }

    /// <summary>workspace_bytes must be at least what the size query returns (FKA_ERR_WORKSPACE).</summary>
    private static int WorkspaceSize(string function, long workspaceBytes, long required, string query)
    {
        if (workspaceBytes < required)
            return LastError.Set(FkaStatus.Workspace, $"{function}: workspace_bytes = {workspaceBytes} is smaller than the {required} bytes {query}_* returns for this call.");
        return FkaStatus.Ok;
    }

    private static int Predict<T>(string function, long queryCount, long sampleCount, long dimension, long responseCount,
        void* queries, long queriesPitch, void* samples, long samplesPitch, void* responses, long responsesPitch,
        void* bandwidths, long bandwidthCount, void* sampleLogWeights, void* output, long outputPitch,
        void* logSumExp, void* effectiveSampleSize, void* entropy, void* localVariance, long localVariancePitch,
        void* workspace, long workspaceBytes, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            LastError.Clear();
            int size = sizeof(T);
            PredictArgs a = default;
            int status;
            if ((status = NativeArguments.Size(function, "query_count", queryCount, 0, out a.QueryCount)) != FkaStatus.Ok) return status;
            if ((status = SampleSizes(function, sampleCount, 0, dimension, responseCount, bandwidthCount,
                out a.SampleCount, out a.Dimension, out a.ResponseCount, out a.BandwidthCount)) != FkaStatus.Ok) return status;
            int m = a.QueryCount, n = a.SampleCount, d = a.Dimension, p = a.ResponseCount;

            if ((status = NativeArguments.Matrix(function, "queries", queries, m, d, queriesPitch, size, out a.QueriesPitch)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "samples", samples, n, d, samplesPitch, size, out a.SamplesPitch)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "responses", responses, n, p, responsesPitch, size, out a.ResponsesPitch)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "output", output, m, p, outputPitch, size, out a.OutputPitch)) != FkaStatus.Ok) return status;
            if (localVariance != null
                && (status = NativeArguments.Matrix(function, "local_variance", localVariance, m, p, localVariancePitch, size, out a.LocalVariancePitch)) != FkaStatus.Ok)
                return status;
            if ((status = NativeArguments.Vector(function, "bandwidths", bandwidths, a.BandwidthCount, optional: false)) != FkaStatus.Ok) return status;
            if (workspaceGiven && (status = NativeArguments.Workspace(function, workspace, workspaceBytes)) != FkaStatus.Ok) return status;

            a.WorkspaceBytes = (int)Math.Min(workspaceBytes, int.MaxValue); // a larger buffer is used up to 2 GiB − 1, the most a call needs
            Span<Extent> extents =
            [
                new Extent(queries, m, d, a.QueriesPitch, size),
                new Extent(samples, n, d, a.SamplesPitch, size),
                new Extent(responses, n, p, a.ResponsesPitch, size),
                Extent.Vector(bandwidths, a.BandwidthCount, size),
                Extent.Vector(sampleLogWeights, n, size),
                new Extent(output, m, p, a.OutputPitch, size),
                Extent.Vector(logSumExp, m, size),
                Extent.Vector(effectiveSampleSize, m, size),
                Extent.Vector(entropy, m, size),
                new Extent(localVariance, m, p, a.LocalVariancePitch, size),
                workspaceGiven ? Extent.Vector(workspace, a.WorkspaceBytes, 1) : default,
            ];
            if ((status = NativeArguments.NoOverlap(function, extents, PredictNames, PredictFirstOutput)) != FkaStatus.Ok) return status;
            if (workspaceGiven)
            {
                // The documented size, from the same flags as the query (the managed check alone would accept less when m = 0).
                long required;
                try
                {
                    required = NadarayaWatson.GetPredictWorkspaceSize<T>(m, n, d, p, a.BandwidthCount, sampleLogWeights != null,
                        effectiveSampleSize != null, entropy != null, localVariance != null);
                }
                catch (ArgumentOutOfRangeException e) when (e.ParamName == "sampleCount")
                {
                    return LastError.Set(FkaStatus.Overflow, $"{function}: {e.Message}");
                }
                if ((status = WorkspaceSize(function, workspaceBytes, required, "fka_nw_predict_workspace_size")) != FkaStatus.Ok) return status;
            }

            a.Queries = queries; a.Samples = samples; a.Responses = responses; a.Bandwidths = bandwidths;
            a.LogWeights = sampleLogWeights; a.Output = output; a.LogSumExp = logSumExp;
            a.EffectiveSampleSize = effectiveSampleSize; a.Entropy = entropy; a.LocalVariance = localVariance;
            a.Workspace = workspace; a.WorkspaceGiven = workspaceGiven;
            RunPredict<T>(in a);
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    /// <summary>Builds the spans (CommunityToolkit's pitch argument is the gap between rows: pitch − width) and calls the
    /// managed API, which checks the values (bandwidths, log-weights: FKA_ERR_ARGUMENT) and the workspace size before it writes.</summary>
    private static void RunPredict<T>(in PredictArgs a)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int m = a.QueryCount, n = a.SampleCount, d = a.Dimension, p = a.ResponseCount;
        var queries = new ReadOnlySpan2D<T>(a.Queries, m, d, a.QueriesPitch - d);
        var samples = new ReadOnlySpan2D<T>(a.Samples, n, d, a.SamplesPitch - d);
        var responses = new ReadOnlySpan2D<T>(a.Responses, n, p, a.ResponsesPitch - p);
        var bandwidths = new ReadOnlySpan<T>(a.Bandwidths, a.BandwidthCount);
        var output = new Span2D<T>(a.Output, m, p, a.OutputPitch - p);
        ReadOnlySpan<T> logWeights = a.LogWeights == null ? default : new ReadOnlySpan<T>(a.LogWeights, n);
        Span<T> logSumExp = a.LogSumExp == null ? default : new Span<T>(a.LogSumExp, m);
        Span<T> effectiveSampleSize = a.EffectiveSampleSize == null ? default : new Span<T>(a.EffectiveSampleSize, m);
        Span<T> entropy = a.Entropy == null ? default : new Span<T>(a.Entropy, m);
        Span2D<T> localVariance = a.LocalVariance == null ? default : new Span2D<T>(a.LocalVariance, m, p, a.LocalVariancePitch - p);
        if (a.WorkspaceGiven)
        {
            Span<byte> workspace = a.Workspace == null ? default : new Span<byte>(a.Workspace, a.WorkspaceBytes);
            NadarayaWatson.Predict(queries, samples, responses, bandwidths, output, logWeights, logSumExp, effectiveSampleSize,
                entropy, localVariance, workspace);
        }
        else
        {
            NadarayaWatson.Predict(queries, samples, responses, bandwidths, output, logWeights, logSumExp, effectiveSampleSize,
                entropy, localVariance);
        }
    }

    private static int PredictWorkspaceSize<T>(string function, long queryCount, long sampleCount, long dimension, long responseCount,
        long bandwidthCount, int weighted, int effectiveSampleSize, int entropy, int localVariance, long* bytes)
        where T : unmanaged
    {
        try
        {
            LastError.Clear();
            if (bytes == null) return LastError.Set(FkaStatus.NullPointer, $"{function}: bytes (the result) is NULL.");
            *bytes = 0;
            int status;
            if ((status = NativeArguments.Size(function, "query_count", queryCount, 0, out int m)) != FkaStatus.Ok) return status;
            if ((status = SampleSizes(function, sampleCount, 0, dimension, responseCount, bandwidthCount,
                out int n, out int d, out int p, out int count)) != FkaStatus.Ok) return status;
            *bytes = NadarayaWatson.GetPredictWorkspaceSize<T>(m, n, d, p, count, weighted != 0, effectiveSampleSize != 0,
                entropy != 0, localVariance != 0);
            return FkaStatus.Ok;
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == "sampleCount")
        {
            // Every count was checked above, so this is the "more than 2 GiB" limit of the managed query.
            return LastError.Set(FkaStatus.Overflow, $"{function}: {e.Message}");
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    /// <summary>The checks of the cross-validation and selection calls: sizes, samples and responses, the bandwidths (read
    /// for cross-validation, written by selection), the score pointer, the workspace, overlaps.</summary>
    private static int ValidateSamples(string function, int elementSize, long sampleCount, long minimumSamples, long dimension,
        long responseCount, void* samples, long samplesPitch, void* responses, long responsesPitch, void* bandwidths,
        long bandwidthCount, double* score, bool scoreOptional, void* workspace, long workspaceBytes, bool workspaceGiven,
        ReadOnlySpan<string> names, int firstOutput, ref SampleArgs a)
    {
        int status;
        if ((status = SampleSizes(function, sampleCount, minimumSamples, dimension, responseCount, bandwidthCount,
            out a.SampleCount, out a.Dimension, out a.ResponseCount, out a.BandwidthCount)) != FkaStatus.Ok) return status;
        int n = a.SampleCount, d = a.Dimension, p = a.ResponseCount;
        if ((status = NativeArguments.Matrix(function, "samples", samples, n, d, samplesPitch, elementSize, out a.SamplesPitch)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Matrix(function, "responses", responses, n, p, responsesPitch, elementSize, out a.ResponsesPitch)) != FkaStatus.Ok) return status;
        if ((status = NativeArguments.Vector(function, "bandwidths", bandwidths, a.BandwidthCount, optional: false)) != FkaStatus.Ok) return status;
        if (score == null && !scoreOptional)
            return LastError.Set(FkaStatus.NullPointer, $"{function}: {names[3]} (the result) is NULL.");
        if (workspaceGiven && (status = NativeArguments.Workspace(function, workspace, workspaceBytes)) != FkaStatus.Ok) return status;
        a.WorkspaceBytes = (int)Math.Min(workspaceBytes, int.MaxValue);
        Span<Extent> extents =
        [
            new Extent(samples, n, d, a.SamplesPitch, elementSize),
            new Extent(responses, n, p, a.ResponsesPitch, elementSize),
            Extent.Vector(bandwidths, a.BandwidthCount, elementSize),
            Extent.Vector(score, 1, sizeof(double)),
            workspaceGiven ? Extent.Vector(workspace, a.WorkspaceBytes, 1) : default,
        ];
        if ((status = NativeArguments.NoOverlap(function, extents[..names.Length], names, firstOutput)) != FkaStatus.Ok) return status;
        if (workspaceGiven)
        {
            long required;
            try
            {
                required = elementSize == sizeof(float)
                    ? NadarayaWatson.GetCrossValidationWorkspaceSize<float>(n, d, p, a.BandwidthCount)
                    : NadarayaWatson.GetCrossValidationWorkspaceSize<double>(n, d, p, a.BandwidthCount);
            }
            catch (ArgumentOutOfRangeException e) when (e.ParamName == "sampleCount")
            {
                return LastError.Set(FkaStatus.Overflow, $"{function}: {e.Message}");
            }
            if ((status = WorkspaceSize(function, workspaceBytes, required, "fka_nw_cross_validation_workspace_size")) != FkaStatus.Ok) return status;
        }
        a.Samples = samples; a.Responses = responses; a.Bandwidths = bandwidths; a.Score = score;
        a.Workspace = workspace; a.WorkspaceGiven = workspaceGiven;
        return FkaStatus.Ok;
    }

    private static int CrossValidation<T>(string function, long sampleCount, long dimension, long responseCount, void* samples,
        long samplesPitch, void* responses, long responsesPitch, void* bandwidths, long bandwidthCount, double* score,
        void* workspace, long workspaceBytes, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            LastError.Clear();
            SampleArgs a = default;
            int status = ValidateSamples(function, sizeof(T), sampleCount, 1, dimension, responseCount, samples, samplesPitch,
                responses, responsesPitch, bandwidths, bandwidthCount, score, scoreOptional: false, workspace, workspaceBytes,
                workspaceGiven, CrossValidationNames, firstOutput: 3, ref a);
            if (status != FkaStatus.Ok) return status;
            var x = new ReadOnlySpan2D<T>(a.Samples, a.SampleCount, a.Dimension, a.SamplesPitch - a.Dimension);
            var y = new ReadOnlySpan2D<T>(a.Responses, a.SampleCount, a.ResponseCount, a.ResponsesPitch - a.ResponseCount);
            var h = new ReadOnlySpan<T>(a.Bandwidths, a.BandwidthCount);
            double result = a.WorkspaceGiven
                ? NadarayaWatson.CrossValidationScore(x, y, h, a.Workspace == null ? default : new Span<byte>(a.Workspace, a.WorkspaceBytes))
                : NadarayaWatson.CrossValidationScore(x, y, h);
            *a.Score = result;
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    private static int CrossValidationWorkspaceSize<T>(string function, long sampleCount, long dimension, long responseCount,
        long bandwidthCount, long* bytes)
        where T : unmanaged
    {
        try
        {
            LastError.Clear();
            if (bytes == null) return LastError.Set(FkaStatus.NullPointer, $"{function}: bytes (the result) is NULL.");
            *bytes = 0;
            int status;
            if ((status = SampleSizes(function, sampleCount, 0, dimension, responseCount, bandwidthCount,
                out int n, out int d, out int p, out int count)) != FkaStatus.Ok) return status;
            *bytes = NadarayaWatson.GetCrossValidationWorkspaceSize<T>(n, d, p, count);
            return FkaStatus.Ok;
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == "sampleCount")
        {
            return LastError.Set(FkaStatus.Overflow, $"{function}: {e.Message}");
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    private static int SelectBandwidth<T>(string function, long sampleCount, long dimension, long responseCount, void* samples,
        long samplesPitch, void* responses, long responsesPitch, void* bandwidths, long bandwidthCount, double* cv)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            LastError.Clear();
            SampleArgs a = default;
            int status = ValidateSamples(function, sizeof(T), sampleCount, 2, dimension, responseCount, samples, samplesPitch,
                responses, responsesPitch, bandwidths, bandwidthCount, cv, scoreOptional: true, null, 0, workspaceGiven: false,
                SelectNames, firstOutput: 2, ref a);
            if (status != FkaStatus.Ok) return status;
            var x = new ReadOnlySpan2D<T>(a.Samples, a.SampleCount, a.Dimension, a.SamplesPitch - a.Dimension);
            var y = new ReadOnlySpan2D<T>(a.Responses, a.SampleCount, a.ResponseCount, a.ResponsesPitch - a.ResponseCount);
            // Selected into a copy, so that the caller's array is written only on success.
            int count = a.BandwidthCount;
            T* selected = (T*)NativeMemory.Alloc((nuint)count, (nuint)sizeof(T));
            try
            {
                double result = NadarayaWatson.SelectBandwidth(x, y, new Span<T>(selected, count));
                new ReadOnlySpan<T>(selected, count).CopyTo(new Span<T>(a.Bandwidths, count));
                if (a.Score != null) *a.Score = result;
            }
            finally
            {
                NativeMemory.Free(selected);
            }
            return FkaStatus.Ok;
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == "samples")
        {
            // Sizes were checked above, so this is the "search workspace would exceed 2 GiB" limit.
            return LastError.Set(FkaStatus.Overflow, $"{function}: {e.Message}");
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }
}
