using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.OnnxRuntime;

namespace FastKernelAttention.Benchmarks.Workloads;

/// <summary>
/// The ONNX Runtime baseline: one checked-in one-node model per workload (bench/onnx/models, written by
/// bench/onnx/make_models.py) — <c>com.microsoft.MultiHeadAttention</c>, or <c>GroupQueryAttention</c> for the causal GQA
/// workload — run on the CPU execution provider with <c>IntraOpNumThreads</c> = our thread count. Inputs and outputs are
/// bound once (<see cref="OrtIoBinding"/> over pinned managed arrays), so a timed call is one <c>RunWithBinding</c>.
/// </summary>
internal static class OnnxRuntimeBaseline
{
    private static readonly Lazy<(string? Version, string? Error)> Loaded = new(Load);

    /// <summary>The native library's version, or null when it did not load (see <see cref="LoadError"/>).</summary>
    public static string? Version => Loaded.Value.Version;

    /// <summary>Why the native library did not load (exception type and message), or null.</summary>
    public static string? LoadError => Loaded.Value.Error;

    /// <summary>The model file of one baseline, copied beside the benchmark by the project file.</summary>
    public static string ModelPath(string name) => Path.Combine(AppContext.BaseDirectory, "onnx", name + ".onnx");

    /// <summary>The ways ONNX Runtime runs <paramref name="workload"/> on the token-major inputs
    /// <paramref name="query"/>, <paramref name="key"/> and <paramref name="value"/>; each plan owns its bound buffers.</summary>
    public static List<OnnxRuntimePlan> Plans(Workload workload, float[] query, float[] key, float[] value)
    {
        int h = workload.Heads, hkv = workload.KeyValueHeads, lq = workload.QueryLength, lk = workload.KeyLength, d = workload.HeadDim;
        var output = new float[lq * h * d];
        var plans = new List<OnnxRuntimePlan>();
        if (workload.Gaussian)
        {
            // −‖q − k‖²/(2h²) = (q·k − ‖k‖²/2)/h² − ‖q‖²/(2h²); the last term is constant along a row, so the softmax equals
            // that of MultiHeadAttention with scale 1/h² on q' = [q, 1] and k' = [k, −‖k‖²/2] (head size d + 1).
            float[] foldedQuery = AppendColumn(query, lq, d, _ => 1f);
            float[] foldedKey = AppendColumn(key, lk, d, row =>
            {
                double norm = 0;
                for (int c = 0; c < d; c++) norm += (double)key[row * d + c] * key[row * d + c];
                return (float)(-norm / 2);
            });
            plans.Add(new OnnxRuntimePlan(workload.Id, "MultiHeadAttention, scale 1/h², norms folded into an extra column", output,
                Input("query", foldedQuery, 1, lq, d + 1), Input("key", foldedKey, 1, lk, d + 1), Input("value", value, 1, lk, d),
                Output("output", output, 1, lq, d)));
        }
        else if (hkv != h && workload.Causal)
        {
            plans.Add(new OnnxRuntimePlan(workload.Id, "GroupQueryAttention (prompt, no past; causal)", output,
                Input("query", query, 1, lq, h * d), Input("key", key, 1, lk, hkv * d), Input("value", value, 1, lk, hkv * d),
                Input("seqlens_k", new[] { lk - 1 }, 1), Input("total_sequence_length", new[] { lk }),
                Output("output", output, 1, lq, h * d),
                Output("present_key", new float[hkv * lk * d], 1, hkv, lk, d), Output("present_value", new float[hkv * lk * d], 1, hkv, lk, d)));
        }
        else if (hkv != h)
        {
            // MultiHeadAttention has no kv_num_heads: give it each kv head repeated H/Hkv times (a 4× larger K and V here).
            plans.Add(new OnnxRuntimePlan(workload.Id, $"MultiHeadAttention, K/V heads repeated ×{h / hkv}", output,
                Input("query", query, 1, lq, h * d), Input("key", RepeatHeads(key, lk, h, hkv, d), 1, lk, h * d),
                Input("value", RepeatHeads(value, lk, h, hkv, d), 1, lk, h * d), Output("output", output, 1, lq, h * d)));
        }
        else
        {
            string mask = workload.Causal ? ", unidirectional=1" : "";
            plans.Add(new OnnxRuntimePlan(workload.Id, $"MultiHeadAttention{mask}, K/V [1, Lk, H·d]", output,
                Input("query", query, 1, lq, h * d), Input("key", key, 1, lk, h * d), Input("value", value, 1, lk, h * d),
                Output("output", output, 1, lq, h * d)));
            if (workload.Decode)
            {
                // A KV cache kept head-major ([1, H, Lk, d], BNSH) spares the kernel its per-call transpose of K and V.
                var bnshOutput = new float[output.Length];
                plans.Add(new OnnxRuntimePlan(workload.Id + "-bnsh", "MultiHeadAttention, K/V cache [1, H, Lk, d]", bnshOutput,
                    Input("query", query, 1, lq, h * d), Input("key", HeadMajor(key, lk, h, d), 1, h, lk, d),
                    Input("value", HeadMajor(value, lk, h, d), 1, h, lk, d), Output("output", bnshOutput, 1, lq, h * d)));
            }
        }
        return plans;
    }

    private static (string, OrtValue) Input(string name, float[] data, params long[] shape) => (name, OrtValue.CreateTensorValueFromMemory(data, shape));

    private static (string, OrtValue) Input(string name, int[] data, params long[] shape) => (name, OrtValue.CreateTensorValueFromMemory(data, shape));

    private static (string, OrtValue) Output(string name, float[] data, params long[] shape) => (name, OrtValue.CreateTensorValueFromMemory(data, shape));

    private static float[] AppendColumn(float[] matrix, int rows, int columns, Func<int, float> extra)
    {
        var result = new float[rows * (columns + 1)];
        for (int r = 0; r < rows; r++)
        {
            Array.Copy(matrix, r * columns, result, r * (columns + 1), columns);
            result[r * (columns + 1) + columns] = extra(r);
        }
        return result;
    }

    private static float[] RepeatHeads(float[] tokenMajor, int tokens, int heads, int keyValueHeads, int d)
    {
        var result = new float[tokens * heads * d];
        int group = heads / keyValueHeads;
        for (int t = 0; t < tokens; t++)
            for (int head = 0; head < heads; head++)
                Array.Copy(tokenMajor, (t * keyValueHeads + head / group) * d, result, (t * heads + head) * d, d);
        return result;
    }

    /// <summary>[tokens × heads·d] token-major to [heads × tokens × d] head-major.</summary>
    internal static float[] HeadMajor(float[] tokenMajor, int tokens, int heads, int d)
    {
        var result = new float[tokenMajor.Length];
        for (int t = 0; t < tokens; t++)
            for (int head = 0; head < heads; head++)
                Array.Copy(tokenMajor, (t * heads + head) * d, result, (head * tokens + t) * d, d);
        return result;
    }

    private static (string?, string?) Load()
    {
        try
        {
            return (OrtEnv.Instance().GetVersionString(), null);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException
            or BadImageFormatException or OnnxRuntimeException or InvalidOperationException)
        {
            string message = e.GetType().Name + ": " + e.Message;
            for (Exception? inner = e.InnerException; inner is not null; inner = inner.InnerException)
                message += " → " + inner.GetType().Name + ": " + inner.Message;
            return (null, message);
        }
    }
}

/// <summary>One ONNX Runtime model with its inputs and outputs (pinned managed arrays), shared by the sessions of every
/// thread count.</summary>
internal sealed class OnnxRuntimePlan : IDisposable
{
    private readonly (string Name, OrtValue Value)[] bound;

    public OnnxRuntimePlan(string model, string variant, float[] output, params (string Name, OrtValue Value)[] values)
    {
        Model = model;
        Variant = variant;
        Output = output;
        bound = values;
    }

    /// <summary>The model file name under bench/onnx/models, without extension.</summary>
    public string Model { get; }

    /// <summary>How the workload is expressed for ONNX Runtime (operator, layout, what differs from ours).</summary>
    public string Variant { get; }

    /// <summary>The first output, [Lq × H·d] token-major, written by every run.</summary>
    public float[] Output { get; }

    /// <summary>A session with <paramref name="threads"/> intra-op threads and every input and output bound.</summary>
    public OnnxRuntimeSession Open(int threads)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        var session = new InferenceSession(OnnxRuntimeBaseline.ModelPath(Model), options);
        OrtIoBinding binding = session.CreateIoBinding();
        var outputs = new HashSet<string>(session.OutputNames);
        foreach ((string name, OrtValue value) in bound)
        {
            if (outputs.Contains(name)) binding.BindOutput(name, value);
            else binding.BindInput(name, value);
        }
        return new OnnxRuntimeSession(session, binding);
    }

    public void Dispose()
    {
        foreach ((_, OrtValue value) in bound) value.Dispose();
    }
}

/// <summary>An open session with its binding; <see cref="Run"/> is the timed call.</summary>
internal sealed class OnnxRuntimeSession : IDisposable
{
    private readonly InferenceSession session;
    private readonly OrtIoBinding binding;
    private readonly RunOptions runOptions = new();

    public OnnxRuntimeSession(InferenceSession session, OrtIoBinding binding)
    {
        this.session = session;
        this.binding = binding;
    }

    /// <summary>One inference into the bound output buffers.</summary>
    public void Run() => session.RunWithBinding(runOptions, binding);

    public void Dispose()
    {
        binding.Dispose();
        runOptions.Dispose();
        session.Dispose();
    }
}
