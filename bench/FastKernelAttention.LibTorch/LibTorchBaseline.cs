using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using FastKernelAttention.Benchmarks.Workloads;
using TorchSharp;
using static TorchSharp.torch;

namespace FastKernelAttention.LibTorch;

/// <summary>
/// The libtorch baseline (TorchSharp-cpu): the ways libtorch runs one workload, each a <see cref="LibTorchVariant"/> whose
/// timed call returns O as [1, H, Lq, d]. Inputs are float32 tensors made once from the token-major arrays, outside the
/// timed call: head-major contiguous copies [1, H, L, d] (the layout <c>scaled_dot_product_attention</c> documents), and
/// for the dot kernel also token-major views [1, L, H, d].transpose(1, 2) of the same data (no copy).
/// </summary>
/// <remarks>
/// TorchSharp 0.107.0's <c>torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask, p, is_casual)</c>
/// has neither <c>scale</c> nor <c>enable_gqa</c>: the scale is always 1/√d, and GQA (W7) gets K and V with each kv head
/// repeated H/Hkv times, either once before timing or by <c>repeat_interleave</c> inside the timed call. Causal workloads
/// with Lq = Lk use <c>is_causal</c> (top-left aligned, the same as bottom-right there); with Lq ≠ Lk an explicit
/// bottom-right boolean mask (key j visible to query i iff j ≤ i + Lk − Lq), built once.
/// </remarks>
internal static class LibTorchBaseline
{
    private static readonly Lazy<(string? Version, string? Error)> Loaded = new(Load);

    /// <summary>libtorch's version (<c>torch.__version__</c>), or null when the native libraries did not load.</summary>
    public static string? Version => Loaded.Value.Version;

    /// <summary>Why libtorch did not load (the exception chain with TorchSharp's load trace), or null.</summary>
    public static string? LoadError => Loaded.Value.Error;

    /// <summary>TorchSharp's assembly version (the NuGet package version).</summary>
    public static string TorchSharpVersion => typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    /// <summary>The libtorch variants of <paramref name="workload"/> on the token-major inputs <paramref name="query"/>
    /// [Lq × H·d], <paramref name="key"/> and <paramref name="value"/> [Lk × Hkv·d]; disposing the plan frees its tensors.</summary>
    public static LibTorchPlan Plan(Workload workload, float[] query, float[] key, float[] value)
    {
        int h = workload.Heads, hkv = workload.KeyValueHeads, lq = workload.QueryLength, lk = workload.KeyLength, d = workload.HeadDim;
        var plan = new LibTorchPlan();
        Tensor queryTokens = plan.Keep(torch.tensor(query, [1, lq, h, d]));
        Tensor keyTokens = plan.Keep(torch.tensor(key, [1, lk, hkv, d]));
        Tensor valueTokens = plan.Keep(torch.tensor(value, [1, lk, hkv, d]));
        // [1, H, L, d]: views of the token-major data, and contiguous head-major copies.
        Tensor q = plan.Keep(queryTokens.transpose(1, 2)), k = plan.Keep(keyTokens.transpose(1, 2)), v = plan.Keep(valueTokens.transpose(1, 2));
        Tensor qh = plan.Keep(q.contiguous()), kh = plan.Keep(k.contiguous()), vh = plan.Keep(v.contiguous());

        if (workload.Gaussian)
        {
            // h = √d. The literal formula: S = −cdist(q, k)²/(2h²), softmax over keys, P·V (squared and scaled in place on
            // cdist's fresh output). cdist's default compute mode takes the matrix-product route for more than 25 rows.
            double bandwidth = workload.Bandwidth, factor = -0.5 / (bandwidth * bandwidth);
            plan.Variants.Add(new LibTorchVariant("cdist route", () =>
            {
                using Tensor logits = torch.cdist(qh, kh);
                logits.pow_(2).mul_(factor);
                using Tensor weights = logits.softmax(-1);
                return weights.matmul(vh);
            }));

            // −‖q − k‖²/(2h²) = q·k/h² − ‖k‖²/(2h²) − ‖q‖²/(2h²), and the last term is constant along a softmax row. SDPA always
            // scales by 1/√d, so q is pre-multiplied by √d/h² (for scale 1/h²), and −‖k‖²/(2h²) is an additive float mask
            // [1, H, 1, Lk] broadcast over the queries; both are made once, outside the timed call (as ONNX Runtime's folded
            // inputs are).
            Tensor scaledQuery = plan.Keep(qh.mul(Math.Sqrt(d) / (bandwidth * bandwidth)));
            Tensor normMask;
            using (Tensor squares = kh.square())
            using (Tensor norms = squares.sum(-1, keepdim: true)) // [1, H, Lk, 1]
                normMask = plan.Keep(norms.mul(factor).transpose(2, 3)); // [1, H, 1, Lk]
            plan.Variants.Add(new LibTorchVariant("sdpa + norm mask",
                () => nn.functional.scaled_dot_product_attention(scaledQuery, kh, vh, normMask)));
            return plan;
        }

        // Bottom-right causal mask: is_causal where Lq = Lk; an explicit boolean mask (true = visible) otherwise.
        bool isCausal = workload.Causal && lq == lk;
        Tensor? mask = workload.Causal && lq != lk ? plan.Keep(torch.ones(lq, lk, ScalarType.Bool).tril(lk - lq)) : null;
        string maskName = isCausal ? ", is_causal" : mask is not null ? ", bottom-right bool mask" : "";

        if (hkv == h)
        {
            plan.Variants.Add(new LibTorchVariant("sdpa" + maskName,
                () => nn.functional.scaled_dot_product_attention(qh, kh, vh, mask, is_casual: isCausal)));
            plan.Variants.Add(new LibTorchVariant("sdpa" + maskName + ", token-major views",
                () => nn.functional.scaled_dot_product_attention(q, k, v, mask, is_casual: isCausal)));
            return plan;
        }

        // GQA without enable_gqa: each kv head repeated H/Hkv times along the head dimension (query head i reads kv head
        // i / (H/Hkv), as repeat_interleave lays them out).
        long group = h / hkv;
        Tensor keysRepeated = plan.Keep(kh.repeat_interleave(group, dim: 1)), valuesRepeated = plan.Keep(vh.repeat_interleave(group, dim: 1));
        plan.Variants.Add(new LibTorchVariant($"sdpa{maskName}, K/V heads repeated ×{group} before timing",
            () => nn.functional.scaled_dot_product_attention(qh, keysRepeated, valuesRepeated, mask, is_casual: isCausal)));
        plan.Variants.Add(new LibTorchVariant($"sdpa{maskName}, repeat_interleave ×{group} in the call", () =>
        {
            using Tensor keys = kh.repeat_interleave(group, dim: 1), values = vh.repeat_interleave(group, dim: 1);
            return nn.functional.scaled_dot_product_attention(qh, keys, values, mask, is_casual: isCausal);
        }));
        return plan;
    }

    private static (string?, string?) Load()
    {
        try
        {
            return (torch.__version__, null);
        }
        catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException
            or EntryPointNotFoundException or BadImageFormatException)
        {
            string message = e.GetType().Name + ": " + e.Message;
            for (Exception? inner = e.InnerException; inner is not null; inner = inner.InnerException)
                message += "\n → " + inner.GetType().Name + ": " + inner.Message;
            // TorchSharp's trace says which loads failed but not why; the loader's own message does (e.g. a missing
            // GLIBCXX version).
            string shim = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
            try
            {
                NativeLibrary.Free(NativeLibrary.Load(shim));
            }
            catch (DllNotFoundException loader)
            {
                message += "\nLoading " + shim + " directly: " + loader.Message;
            }
            return (null, message);
        }
    }
}

/// <summary>The tensors made for one workload and the variants that read them.</summary>
internal sealed class LibTorchPlan : IDisposable
{
    private readonly List<Tensor> tensors = [];

    /// <summary>The ways libtorch runs the workload, in the order they are measured.</summary>
    public List<LibTorchVariant> Variants { get; } = [];

    /// <summary>Registers <paramref name="tensor"/> to be disposed with the plan and returns it.</summary>
    public Tensor Keep(Tensor tensor)
    {
        tensors.Add(tensor);
        return tensor;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Tensor tensor in tensors) tensor.Dispose();
        tensors.Clear();
    }
}

/// <summary>One way libtorch computes a workload.</summary>
/// <param name="Name">How the workload is expressed (operator, layout, mask): the JSON's "variant" field.</param>
/// <param name="Call">One forward call; returns a new tensor [1, H, Lq, d] that the caller disposes.</param>
internal sealed record LibTorchVariant(string Name, Func<Tensor> Call)
{
    /// <summary>One call whose output is freed at once (what is timed).</summary>
    public void Run()
    {
        using Tensor output = Call();
    }

    /// <summary>One call, with the output converted to token-major [Lq × H·d] floats.</summary>
    public float[] Output()
    {
        using Tensor output = Call();
        using Tensor tokenMajor = output.transpose(1, 2).contiguous();
        return tokenMajor.data<float>().ToArray();
    }
}
