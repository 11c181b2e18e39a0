using System;

namespace FastKernelAttention.Reference.Estimators;

/// <summary>The two-stage denoiser of MATH §8, literally, in double: Stage 1 is ParticleFlowReference.Run from the noisy
/// tokens; Stage 2 materialises w_ij ∝ exp(−‖y_i − p_j‖²/(2σ²)) and returns Σ_j w_ij p_j.</summary>
public static class TwoStageDenoiserReference
{
    /// <summary>T* = σ²/(2h²) + ½·ln(1 + σ²/τ²).</summary>
    /// <param name="noiseVariance">σ².</param>
    /// <param name="bandwidth">h.</param>
    /// <param name="priorVariance">τ² (+∞ drops the second term).</param>
    public static double RuleHorizon(double noiseVariance, double bandwidth, double priorVariance) =>
        noiseVariance / (2 * bandwidth * bandwidth) + 0.5 * Math.Log(1 + noiseVariance / priorVariance);

    /// <summary>Stage 1 then Stage 2.</summary>
    /// <param name="noisyTokens">y, n × d.</param>
    /// <param name="noiseVariance">σ² (Stage-2 bandwidth σ).</param>
    /// <param name="bandwidth">Stage-1 bandwidth h.</param>
    /// <param name="stepSize">Δt.</param>
    /// <param name="stepCount">L.</param>
    /// <param name="subSteps">K.</param>
    /// <param name="blend">β.</param>
    /// <returns>The denoised tokens [n×d] and the refined particles [n×d].</returns>
    public static (double[,] Output, double[,] Particles) Denoise(double[,] noisyTokens, double noiseVariance, double bandwidth,
        double stepSize, int stepCount, int subSteps = 1, double blend = 0)
    {
        ArgumentNullException.ThrowIfNull(noisyTokens);
        int n = noisyTokens.GetLength(0), d = noisyTokens.GetLength(1);
        var particles = ParticleFlowReference.Run(noisyTokens, bandwidth, stepSize, stepCount, subSteps, blend).Particles;
        var (weights, _) = NadarayaWatsonReference.Weights(noisyTokens, particles, new[] { Math.Sqrt(noiseVariance) });
        var output = new double[n, d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int c = 0; c < d; c++)
                    output[i, c] += weights[i, j] * particles[j, c];
        return (output, particles);
    }
}
