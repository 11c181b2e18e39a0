using System;
using System.Numerics;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

public static partial class NadarayaWatson
{
    /// <summary>Candidates evaluated per fused pass: each is one attention head over the shared samples.</summary>
    private const int CandidatesPerPass = 12;

    /// <summary>Grid step in log h: the MATH §6 grid h0·2^(k/2).</summary>
    private static readonly double GridStep = 0.5 * Math.Log(2.0);

    /// <summary>Brent's tolerance on log h: each line search ends within a relative 1e-4 of its minimum.</summary>
    private const double LogBandwidthTolerance = 1e-4;

    /// <summary>The search stays within h0·2^(±30) of the normal-reference start.</summary>
    private const double MaxLogOffset = 30 * 0.6931471805599453;

    private const int MaxSweeps = 40;

    /// <summary>Per-dimension selection uses the gradient pass (BFGS) while its value width p + 2d + 2dp stays below this;
    /// past it, coordinate search.</summary>
    private const int MaxGradientWidth = 1024;

    private static int GradientWidth(int d, int p) => (int)Math.Min(int.MaxValue, p + 2L * d + 2L * d * p);

    /// <summary>
    /// Least-squares leave-one-out bandwidth selection for Nadaraya–Watson regression: minimises
    /// CV(h) = (1/n)·Σ_i ‖Y_i − ĝ₋ᵢ(X_i)‖² (MATH §6) over one common bandwidth (<paramref name="bandwidths"/> of length 1) or
    /// one bandwidth per dimension (length d).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="samples">X, n × d with n ≥ 2 and d ≥ 1.</param>
    /// <param name="responses">Y, n × p (p ≥ 1).</param>
    /// <param name="bandwidths">Output: length 1 (one common h) or d (h_k per dimension); receives the selected bandwidths.</param>
    /// <returns>CV at the selected bandwidths (as stored in T), computed in double.</returns>
    /// <remarks>
    /// <para>Search, in u = log h and always in double precision: start from the normal-reference rule
    /// h0_k = 1.06·σ_k·n^(−1/(d+4)) (σ_k the population standard deviation; for one common bandwidth σ is the root mean square
    /// of the σ_k). Evaluate the grid h0·2^(k/2), k = −6..6 (its 12 points other than h0 as 12 attention heads in one fused pass, with the diagonal
    /// masked), extended past an edge while CV keeps falling, then refine inside the bracket by Brent's method
    /// (golden-section steps with parabolic interpolation) to 1e-4 in log h. Per-dimension bandwidths continue from there by
    /// BFGS over all log h_k with the exact gradient ∂CV/∂log h_k, obtained in the same fused leave-one-out pass by
    /// augmenting the values with [Y, z_k, z_k², Y·z_k, Y·z_k²] (z = (X − X̄)/h; p + 2d + 2dp columns), and a backtracking
    /// line search, until a step moves no log h_k by more than 1e-7 or CV stops falling. Past 1024 such columns the
    /// per-dimension search is coordinate search instead: the grid-then-Brent line search along each log h_k in turn
    /// (a 6-point grid in the first sweep, then a 2-point grid whose step is twice the previous move of that coordinate),
    /// until a sweep moves no log h_k by more than 1e-4 or lowers CV by less than a relative 1e-12. A dimension in which every sample
    /// has the same value does not affect CV; its bandwidth keeps the start value (1 when σ_k = 0).</para>
    /// <para>The minimum found is local, like statsmodels' <c>KernelReg(reg_type='lc', bw='cv_ls')</c> (Nelder–Mead from the
    /// same start). Constant responses give CV = 0 for every h; the start is returned. Scratch comes from native memory; no
    /// managed memory is allocated. NaN in the data makes every CV NaN and the start is returned with CV = NaN.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">n &lt; 2, a shape does not match, or <paramref name="bandwidths"/> has a length other
    /// than 1 or d; the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static double SelectBandwidth<T>(ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses, Span<T> bandwidths)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => SelectBandwidthCore(IsaDispatch.Selected, samples, responses, bandwidths);

    internal static unsafe double SelectBandwidthCore<T>(IsaPath path, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        Span<T> bandwidths)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireFloatOrDouble<T>();
        ValidateSamples(samples, responses, minimumCount: 2);
        int n = samples.Height, d = samples.Width;
        if (bandwidths.Length != 1 && bandwidths.Length != d)
            ThrowHelper.ThrowLength(nameof(bandwidths), $"1 or d = {d}", bandwidths.Length);

        var search = new CandidateEvaluator<T>(path, samples, responses);
        try
        {
            bool perDimension = bandwidths.Length > 1;
            double* state = (double*)NativeMemory.Alloc((nuint)(5 * d), sizeof(double));
            try
            {
                var u = new Span<double>(state, d);
                var sigma = new Span<double>(state + d, d);
                var direction = new Span<double>(state + 2 * d, d);
                var lastMove = new Span<double>(state + 3 * d, d);
                var start = new Span<double>(state + 4 * d, d);
                search.StandardDeviations(sigma);
                NormalReference(sigma, n, perDimension, u);
                for (int k = 0; k < d; k++) u[k] = Math.Log(u[k]);
                u.CopyTo(start);

                // Common multiplier of all bandwidths (the only search for one bandwidth).
                direction.Fill(1.0);
                double cv = search.Evaluate(u);
                if (double.IsFinite(cv))
                {
                    cv = search.LineSearch(u, direction, cv, GridStep, 6);
                    if (perDimension && search.HasGradient)
                    {
                        cv = search.Bfgs(u, cv, sigma, start);
                    }
                    else if (perDimension)
                    {
                        // Coordinate search in log h_k; the grid step shrinks to twice the previous move of that coordinate.
                        lastMove.Fill(GridStep);
                        for (int sweep = 0; sweep < MaxSweeps; sweep++)
                        {
                            double largest = 0, before = cv;
                            for (int k = 0; k < d; k++)
                            {
                                if (!(sigma[k] > 0)) continue;
                                direction.Clear();
                                direction[k] = 1.0;
                                double previous = u[k];
                                double step = Math.Clamp(2 * Math.Abs(lastMove[k]), 4 * LogBandwidthTolerance, GridStep);
                                cv = search.LineSearch(u, direction, cv, step, sweep == 0 ? 3 : 1);
                                lastMove[k] = u[k] - previous;
                                largest = Math.Max(largest, Math.Abs(lastMove[k]));
                            }
                            if (largest <= LogBandwidthTolerance || before - cv <= 1e-12 * before) break;
                        }
                    }
                }

                for (int k = 0; k < bandwidths.Length; k++) bandwidths[k] = T.CreateTruncating(Math.Exp(u[k]));
                // Report CV at the bandwidths as stored (rounded to T).
                for (int k = 0; k < d; k++) u[k] = Math.Log(double.CreateTruncating(bandwidths[perDimension ? k : 0]));
                return search.Evaluate(u);
            }
            finally
            {
                NativeMemory.Free(state);
            }
        }
        finally
        {
            search.Dispose();
        }
    }

    /// <summary>The normal-reference start h_k = 1.06·σ_k·n^(−1/(d+4)) (MATH §6) from the population standard deviations σ_k;
    /// for one common bandwidth σ is their root mean square. A zero or non-finite σ gives 1.</summary>
    internal static void NormalReference(ReadOnlySpan<double> sigma, int sampleCount, bool perDimension, Span<double> bandwidths)
    {
        int d = sigma.Length;
        double rate = Math.Pow(sampleCount, -1.0 / (d + 4));
        double rms = 0;
        foreach (double s in sigma) rms += s * s;
        rms = Math.Sqrt(rms / d);
        for (int k = 0; k < d; k++)
        {
            double s = perDimension ? sigma[k] : rms;
            bandwidths[k] = s > 0 && double.IsFinite(s) ? 1.06 * s * rate : 1.0;
        }
    }

    /// <summary>Test hook: CV and ∂CV/∂log h_k at the log-bandwidths <paramref name="logBandwidths"/> (d values) from the
    /// gradient pass of the per-dimension search.</summary>
    internal static double CrossValidationWithGradient(IsaPath path, ReadOnlySpan2D<double> samples, ReadOnlySpan2D<double> responses,
        ReadOnlySpan<double> logBandwidths, Span<double> gradient)
    {
        var search = new CandidateEvaluator<double>(path, samples, responses);
        try
        {
            if (!search.HasGradient) throw new NotSupportedException("Too many gradient columns.");
            return search.EvaluateWithGradient(logBandwidths, gradient);
        }
        finally
        {
            search.Dispose();
        }
    }

    /// <summary>Evaluates CV at many candidate bandwidth vectors per fused pass: candidate g is attention head g, with keys
    /// (= queries) X/h_g in double, values Y, the diagonal masked and the kernel bandwidth 1. Owns its native memory.</summary>
    private unsafe struct CandidateEvaluator<T> : IDisposable
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        private readonly IsaPath _path;
        private readonly int _n, _d, _p;
        private byte* _memory;
        private readonly double* _samples;   // n × d
        private readonly double* _responses; // n × p
        private readonly double* _keys;      // n × (CandidatesPerPass·d), head g in columns [g·d, (g+1)·d)
        private readonly double* _values;    // n × (CandidatesPerPass·p), Y repeated per head
        private readonly double* _estimates; // n × (CandidatesPerPass·p)
        private readonly double* _candidates; // CandidatesPerPass × d log-bandwidths
        private readonly byte* _workspace;
        private readonly int _workspaceBytes;
        private readonly int _gradientWidth;  // W = p + 2d + 2dp columns of the gradient pass
        private readonly double* _augmented;  // n × W: [Ỹ_c | z_k, z_k² | Ỹ_c z_k, Ỹ_c z_k²], z = (X − mean)/h, Ỹ = Y − mean
        private readonly double* _moments;    // n × W: their leave-one-out weighted means
        private readonly double* _centre;     // d column means of X, then p column means of Y

        public CandidateEvaluator(IsaPath path, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses)
        {
            _path = path;
            _n = samples.Height;
            _d = samples.Width;
            _p = responses.Width;
            int g = CandidatesPerPass;
            long sizes = Align((long)_n * _d * 8) + Align((long)_n * _p * 8) + Align((long)_n * g * _d * 8)
                + 2 * Align((long)_n * g * _p * 8) + Align((long)g * _d * 8);
            _gradientWidth = GradientWidth(_d, _p);
            bool gradient = _gradientWidth <= MaxGradientWidth;
            sizes += gradient ? 2 * Align((long)_n * _gradientWidth * 8) + Align((long)(_d + _p) * 8) : 0;
            long kernel = Math.Max(Kernels.AttentionDriver.WorkspaceBytes(sizeof(double), _d, _p, _n, g, g, gaussian: true, 1),
                gradient ? Kernels.AttentionDriver.WorkspaceBytes(sizeof(double), _d, _gradientWidth, _n, 1, 1, gaussian: true, 1) : 0);
            if (sizes + kernel + 64 > int.MaxValue) ThrowHelper.ThrowOutOfRange(nameof(samples), _n, "The search workspace would exceed 2 GiB.");
            _workspaceBytes = (int)kernel;
            _memory = (byte*)NativeMemory.AlignedAlloc((nuint)(sizes + kernel), 64);
            byte* cursor = _memory;
            _samples = (double*)cursor; cursor += Align((long)_n * _d * 8);
            _responses = (double*)cursor; cursor += Align((long)_n * _p * 8);
            _keys = (double*)cursor; cursor += Align((long)_n * g * _d * 8);
            _values = (double*)cursor; cursor += Align((long)_n * g * _p * 8);
            _estimates = (double*)cursor; cursor += Align((long)_n * g * _p * 8);
            _candidates = (double*)cursor; cursor += Align((long)g * _d * 8);
            if (gradient)
            {
                _augmented = (double*)cursor; cursor += Align((long)_n * _gradientWidth * 8);
                _moments = (double*)cursor; cursor += Align((long)_n * _gradientWidth * 8);
                _centre = (double*)cursor; cursor += Align((long)(_d + _p) * 8);
            }
            _workspace = cursor;
            for (int j = 0; j < _n; j++)
            {
                ReadOnlySpan<T> x = samples.GetRowSpan(j);
                for (int k = 0; k < _d; k++) _samples[(nint)j * _d + k] = double.CreateTruncating(x[k]);
                ReadOnlySpan<T> y = responses.GetRowSpan(j);
                for (int c = 0; c < _p; c++)
                {
                    double value = double.CreateTruncating(y[c]);
                    _responses[(nint)j * _p + c] = value;
                    for (int h = 0; h < g; h++) _values[((nint)j * g + h) * _p + c] = value;
                }
            }
            if (gradient)
            {
                for (int k = 0; k < _d + _p; k++)
                {
                    double sum = 0;
                    for (int j = 0; j < _n; j++) sum += k < _d ? _samples[(nint)j * _d + k] : _responses[(nint)j * _p + k - _d];
                    _centre[k] = sum / _n;
                }
            }
        }

        public readonly bool HasGradient => _augmented != null;

        public void Dispose()
        {
            if (_memory != null) NativeMemory.AlignedFree(_memory);
            _memory = null;
        }

        /// <summary>Population standard deviation of each sample column (two-pass, double).</summary>
        public readonly void StandardDeviations(Span<double> sigma)
        {
            for (int k = 0; k < _d; k++)
            {
                double mean = 0;
                for (int j = 0; j < _n; j++) mean += _samples[(nint)j * _d + k];
                mean /= _n;
                double sum = 0;
                for (int j = 0; j < _n; j++)
                {
                    double delta = _samples[(nint)j * _d + k] - mean;
                    sum += delta * delta;
                }
                sigma[k] = Math.Sqrt(sum / _n);
            }
        }

        /// <summary>CV at the log-bandwidths <paramref name="logBandwidths"/> (d values).</summary>
        public readonly double Evaluate(ReadOnlySpan<double> logBandwidths)
        {
            logBandwidths.CopyTo(new Span<double>(_candidates, _d));
            double score = 0;
            EvaluateCandidates(1, new Span<double>(&score, 1));
            return score;
        }

        /// <summary>CV at the first <paramref name="count"/> candidates stored in <see cref="_candidates"/>, in one pass.</summary>
        private readonly void EvaluateCandidates(int count, Span<double> scores)
        {
            int g = CandidatesPerPass, n = _n, d = _d, p = _p;
            for (int h = 0; h < count; h++)
            {
                for (int k = 0; k < d; k++)
                {
                    double inverse = Math.Exp(-_candidates[h * d + k]);
                    double* column = _keys + h * d + k;
                    double* source = _samples + k;
                    for (int j = 0; j < n; j++) column[(nint)j * g * d] = source[(nint)j * d] * inverse;
                }
            }
            var keys = new ReadOnlySpan2D<double>(_keys, n, count * d, (g - count) * d);
            var values = new ReadOnlySpan2D<double>(_values, n, count * p, (g - count) * p);
            var estimates = new Span2D<double>(_estimates, n, count * p, (g - count) * p);
            var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.0 };
            Attention.ForwardCore(_path, keys, keys, values, estimates, count, count, in options, default, default, default,
                excludeDiagonal: true, new Span<byte>(_workspace, _workspaceBytes), workspaceGiven: true);
            var responses = new ReadOnlySpan2D<double>(_responses, n, p, 0);
            for (int h = 0; h < count; h++)
                scores[h] = MeanSquaredResidual<double>(responses, estimates, h * p);
        }

        /// <summary>CV and its gradient ∂CV/∂u_k (u = log h) from one fused leave-one-out pass with augmented values:
        /// ∂ĝ₋ᵢ/∂u_k = Σ_j w_ij (Y_j − ĝ₋ᵢ)(z_ik − z_jk)² = Cov_w(Y, z_k²) − 2 z_ik Cov_w(Y, z_k) with z = (X − X̄)/h, and
        /// ∂CV/∂u_k = −(2/n) Σ_i Σ_c r_ic ∂ĝ₋ᵢ,c/∂u_k. Responses are centred (Ỹ = Y − Ȳ) to limit cancellation.</summary>
        public readonly double EvaluateWithGradient(ReadOnlySpan<double> logBandwidths, Span<double> gradient)
        {
            int n = _n, d = _d, p = _p, width = _gradientWidth;
            double* inverse = stackalloc double[d];
            for (int k = 0; k < d; k++) inverse[k] = Math.Exp(-logBandwidths[k]);
            for (int j = 0; j < n; j++)
            {
                double* row = _augmented + (nint)j * width;
                double* x = _samples + (nint)j * d;
                double* y = _responses + (nint)j * p;
                for (int c = 0; c < p; c++) row[c] = y[c] - _centre[d + c];
                for (int k = 0; k < d; k++)
                {
                    double z = (x[k] - _centre[k]) * inverse[k];
                    row[p + 2 * k] = z;
                    row[p + 2 * k + 1] = z * z;
                    for (int c = 0; c < p; c++)
                    {
                        row[p + 2 * d + 2 * (k * p + c)] = row[c] * z;
                        row[p + 2 * d + 2 * (k * p + c) + 1] = row[c] * z * z;
                    }
                }
            }
            // Keys (= queries): the z columns, copied contiguous into the first head of the candidate key buffer.
            int g = CandidatesPerPass;
            for (int j = 0; j < n; j++)
            {
                for (int k = 0; k < d; k++) _keys[(nint)j * g * d + k] = _augmented[(nint)j * width + p + 2 * k];
            }
            var keys = new ReadOnlySpan2D<double>(_keys, n, d, (g - 1) * d);
            var values = new ReadOnlySpan2D<double>(_augmented, n, width, 0);
            var moments = new Span2D<double>(_moments, n, width, 0);
            var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.0 };
            Attention.ForwardCore(_path, keys, keys, values, moments, 1, 1, in options, default, default, default,
                excludeDiagonal: true, new Span<byte>(_workspace, _workspaceBytes), workspaceGiven: true);

            gradient.Clear();
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double* m = _moments + (nint)i * width;
                double* own = _augmented + (nint)i * width;
                for (int c = 0; c < p; c++)
                {
                    double estimate = m[c];
                    double residual = own[c] - estimate;
                    sum += residual * residual;
                    for (int k = 0; k < d; k++)
                    {
                        double covarianceSquare = m[p + 2 * d + 2 * (k * p + c) + 1] - estimate * m[p + 2 * k + 1];
                        double covariance = m[p + 2 * d + 2 * (k * p + c)] - estimate * m[p + 2 * k];
                        double derivative = covarianceSquare - 2 * own[p + 2 * k] * covariance;
                        gradient[k] += residual * derivative;
                    }
                }
            }
            for (int k = 0; k < d; k++) gradient[k] *= -2.0 / n;
            return sum / n;
        }

        /// <summary>Minimises CV over all log h_k by BFGS with the fused gradient and a backtracking (Armijo) line search,
        /// steps capped at 1 in log h and every log h_k kept within ±MaxLogOffset of <paramref name="origin"/>; stops when a step moves no log h_k by more than 1e-7 or CV stops falling.</summary>
        public readonly double Bfgs(Span<double> u, double current, ReadOnlySpan<double> sigma, ReadOnlySpan<double> origin)
        {
            int d = _d;
            double* memory = (double*)NativeMemory.Alloc((nuint)(d * d + 6 * d), sizeof(double));
            try
            {
                var inverseHessian = new Span<double>(memory, d * d);
                var g = new Span<double>(memory + d * d, d);
                var gNew = new Span<double>(memory + d * d + d, d);
                var direction = new Span<double>(memory + d * d + 2 * d, d);
                var trial = new Span<double>(memory + d * d + 3 * d, d);
                var s = new Span<double>(memory + d * d + 4 * d, d);
                var y = new Span<double>(memory + d * d + 5 * d, d);
                // Dimensions that barely affect CV have tiny, noisy gradients: keep every log h_k within MaxLogOffset of
                // the normal-reference start (origin), as documented, so that no bandwidth runs off to overflow.
                double f = EvaluateWithGradient(u, g);
                if (!double.IsFinite(f)) return current;
                for (int k = 0; k < d; k++) if (!(sigma[k] > 0)) g[k] = 0; // a constant column does not affect CV
                double gMax = 0;
                foreach (double v in g) gMax = Math.Max(gMax, Math.Abs(v));
                if (gMax == 0) return f;
                inverseHessian.Clear();
                for (int k = 0; k < d; k++) inverseHessian[k * d + k] = 0.1 / gMax;
                for (int iteration = 0; iteration < 200; iteration++)
                {
                    double slope = 0, longest = 0;
                    for (int k = 0; k < d; k++)
                    {
                        double sum = 0;
                        for (int l = 0; l < d; l++) sum -= inverseHessian[k * d + l] * g[l];
                        direction[k] = sum;
                        slope += sum * g[k];
                        longest = Math.Max(longest, Math.Abs(sum));
                    }
                    if (!(slope < 0))
                    {
                        // Not a descent direction: restart from a scaled steepest descent.
                        inverseHessian.Clear();
                        gMax = 0;
                        foreach (double v in g) gMax = Math.Max(gMax, Math.Abs(v));
                        if (gMax == 0) break;
                        for (int k = 0; k < d; k++) { inverseHessian[k * d + k] = 0.1 / gMax; direction[k] = -0.1 * g[k] / gMax; }
                        slope = 0;
                        longest = 0;
                        for (int k = 0; k < d; k++) { slope += direction[k] * g[k]; longest = Math.Max(longest, Math.Abs(direction[k])); }
                    }
                    double alpha = longest > 1 ? 1 / longest : 1;
                    double fNew = double.NaN;
                    bool accepted = false;
                    for (int backtrack = 0; backtrack < 40; backtrack++)
                    {
                        for (int k = 0; k < d; k++)
                            trial[k] = Math.Clamp(u[k] + alpha * direction[k], origin[k] - MaxLogOffset, origin[k] + MaxLogOffset);
                        fNew = EvaluateWithGradient(trial, gNew);
                        if (fNew <= f + 1e-4 * alpha * slope) { accepted = true; break; }
                        alpha *= 0.5;
                        if (alpha * longest < 1e-9) break;
                    }
                    if (!accepted) break;
                    for (int k = 0; k < d; k++) if (!(sigma[k] > 0)) gNew[k] = 0;
                    double sy = 0, yy = 0, moved = 0;
                    for (int k = 0; k < d; k++)
                    {
                        s[k] = trial[k] - u[k];
                        y[k] = gNew[k] - g[k];
                        sy += s[k] * y[k];
                        yy += y[k] * y[k];
                        moved = Math.Max(moved, Math.Abs(s[k]));
                    }
                    double decrease = f - fNew;
                    trial.CopyTo(u);
                    gNew.CopyTo(g);
                    f = fNew;
                    if (moved <= 1e-7 || decrease <= 1e-14 * Math.Abs(f)) break;
                    if (sy > 1e-300)
                    {
                        if (iteration == 0)
                        {
                            // Shanno–Phua scaling of the first inverse-Hessian guess.
                            inverseHessian.Clear();
                            for (int k = 0; k < d; k++) inverseHessian[k * d + k] = sy / yy;
                        }
                        // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, ρ = 1/(yᵀs).
                        double rho = 1 / sy;
                        Span<double> hy = direction; // reuse: H y
                        double yhy = 0;
                        for (int k = 0; k < d; k++)
                        {
                            double sum = 0;
                            for (int l = 0; l < d; l++) sum += inverseHessian[k * d + l] * y[l];
                            hy[k] = sum;
                            yhy += y[k] * sum;
                        }
                        for (int k = 0; k < d; k++)
                        {
                            for (int l = 0; l < d; l++)
                            {
                                inverseHessian[k * d + l] += -rho * (hy[k] * s[l] + s[k] * hy[l]) + (rho * rho * yhy + rho) * s[k] * s[l];
                            }
                        }
                    }
                }
                return f;
            }
            finally
            {
                NativeMemory.Free(memory);
            }
        }

        /// <summary>Minimises CV along u + t·direction: a batched grid t = ±j·step (j = 1..half), extended past an edge
        /// while CV keeps falling, then Brent's method inside the bracket. Updates <paramref name="u"/>; returns its CV.</summary>
        public readonly double LineSearch(Span<double> u, ReadOnlySpan<double> direction, double current, double step, int half)
        {
            Span<double> offsets = stackalloc double[CandidatesPerPass];
            Span<double> scores = stackalloc double[CandidatesPerPass];
            // Bracket state: best offset tb with CV fb, neighbours (ta, fa) below and (tc, fc) above.
            double tb = 0, fb = current;
            double ta = double.NegativeInfinity, fa = double.PositiveInfinity, tc = double.PositiveInfinity, fc = double.PositiveInfinity;
            int count = 2 * half;
            for (int j = 0; j < half; j++)
            {
                offsets[j] = -(half - j) * step;
                offsets[half + j] = (j + 1) * step;
            }
            Grid(u, direction, offsets[..count], scores);
            UpdateBracket(offsets[..count], scores, 0, current, ref ta, ref fa, ref tb, ref fb, ref tc, ref fc);

            // Extend past an edge while CV keeps falling (the grid's best point is its outermost one).
            double low = offsets[0], high = offsets[count - 1];
            while (double.IsInfinity(ta) || double.IsInfinity(tc))
            {
                bool down = double.IsInfinity(ta);
                double edge = down ? low : high;
                if (Math.Abs(edge) >= MaxLogOffset) break;
                for (int j = 0; j < CandidatesPerPass; j++) offsets[j] = edge + (down ? -(j + 1) : (j + 1)) * step;
                Grid(u, direction, offsets, scores);
                if (down) low = offsets[CandidatesPerPass - 1]; else high = offsets[CandidatesPerPass - 1];
                double previousBest = tb;
                UpdateBracketExtended(offsets, scores, ref ta, ref fa, ref tb, ref fb, ref tc, ref fc, down);
                if (tb == previousBest && (double.IsInfinity(ta) || double.IsInfinity(tc))) break;
            }
            // No closed bracket (the search hit its range), or a flat one (e.g. constant responses): keep the best point.
            if (double.IsInfinity(ta) || double.IsInfinity(tc) || (fa == fb && fc == fb))
            {
                Apply(u, direction, tb);
                return fb;
            }

            double t = Brent(u, direction, ta, tb, tc, fb, out double fbest);
            Apply(u, direction, t);
            return fbest;
        }

        private readonly void Grid(ReadOnlySpan<double> u, ReadOnlySpan<double> direction, ReadOnlySpan<double> offsets, Span<double> scores)
        {
            int d = _d;
            for (int h = 0; h < offsets.Length; h++)
            {
                for (int k = 0; k < d; k++) _candidates[h * d + k] = u[k] + offsets[h] * direction[k];
            }
            EvaluateCandidates(offsets.Length, scores);
        }

        /// <summary>Given CV at sorted offsets plus the current point (offset 0), finds the smallest and its neighbours.</summary>
        private static void UpdateBracket(ReadOnlySpan<double> offsets, ReadOnlySpan<double> scores, double t0, double f0,
            ref double ta, ref double fa, ref double tb, ref double fb, ref double tc, ref double fc)
        {
            // Merge the current point into the sorted list conceptually: offsets are −half..−1, 1..half.
            int count = offsets.Length, half = count / 2;
            Span<double> t = stackalloc double[count + 1];
            Span<double> f = stackalloc double[count + 1];
            for (int j = 0; j < half; j++) { t[j] = offsets[j]; f[j] = scores[j]; }
            t[half] = t0; f[half] = f0;
            for (int j = half; j < count; j++) { t[j + 1] = offsets[j]; f[j + 1] = scores[j]; }
            int best = half;
            for (int j = 0; j <= count; j++)
            {
                if (f[j] < f[best]) best = j;
            }
            tb = t[best]; fb = f[best];
            if (best > 0) { ta = t[best - 1]; fa = f[best - 1]; } else { ta = double.NegativeInfinity; fa = double.PositiveInfinity; }
            if (best < count) { tc = t[best + 1]; fc = f[best + 1]; } else { tc = double.PositiveInfinity; fc = double.PositiveInfinity; }
        }

        /// <summary>After extending the grid downwards (offsets descending) or upwards (ascending) from the current best edge.</summary>
        private static void UpdateBracketExtended(ReadOnlySpan<double> offsets, ReadOnlySpan<double> scores,
            ref double ta, ref double fa, ref double tb, ref double fb, ref double tc, ref double fc, bool down)
        {
            // Walk outwards from the old edge (tb): CV keeps falling while each next point is strictly lower.
            double previousT = tb, previousF = fb;
            int j = 0;
            for (; j < offsets.Length; j++)
            {
                if (!(scores[j] < previousF)) break;
                previousT = offsets[j];
                previousF = scores[j];
            }
            if (j == 0)
            {
                // The old edge is the minimum: its outer neighbour is offsets[0].
                if (down) { ta = offsets[0]; fa = scores[0]; } else { tc = offsets[0]; fc = scores[0]; }
                return;
            }
            double inner = j >= 2 ? offsets[j - 2] : tb, innerF = j >= 2 ? scores[j - 2] : fb;
            tb = previousT; fb = previousF;
            if (j < offsets.Length)
            {
                if (down) { tc = inner; fc = innerF; ta = offsets[j]; fa = scores[j]; }
                else { ta = inner; fa = innerF; tc = offsets[j]; fc = scores[j]; }
            }
            else
            {
                if (down) { tc = inner; fc = innerF; ta = double.NegativeInfinity; fa = double.PositiveInfinity; }
                else { ta = inner; fa = innerF; tc = double.PositiveInfinity; fc = double.PositiveInfinity; }
            }
        }

        private static void Apply(Span<double> u, ReadOnlySpan<double> direction, double t)
        {
            for (int k = 0; k < u.Length; k++) u[k] += t * direction[k];
        }

        /// <summary>Brent's minimisation on [a, c] from the interior point b with CV fb (Brent 1973, "localmin"; golden
        /// section with parabolic interpolation), absolute tolerance <see cref="LogBandwidthTolerance"/> in the offset.</summary>
        private readonly double Brent(ReadOnlySpan<double> u, ReadOnlySpan<double> direction, double a, double b, double c,
            double fb, out double fbest)
        {
            const double GoldenSection = 0.3819660112501051;
            double lo = a, hi = c;
            double x = b, w = b, v = b, fx = fb, fw = fb, fv = fb;
            double step = 0, previousStep = 0;
            for (int iteration = 0; iteration < 100; iteration++)
            {
                double middle = 0.5 * (lo + hi);
                double tol1 = LogBandwidthTolerance * 0.5, tol2 = 2 * tol1;
                if (Math.Abs(x - middle) <= tol2 - 0.5 * (hi - lo)) break;
                bool golden = true;
                if (Math.Abs(previousStep) > tol1)
                {
                    double r = (x - w) * (fx - fv);
                    double q = (x - v) * (fx - fw);
                    double pp = (x - v) * q - (x - w) * r;
                    q = 2 * (q - r);
                    if (q > 0) pp = -pp; else q = -q;
                    if (Math.Abs(pp) < Math.Abs(0.5 * q * previousStep) && pp > q * (lo - x) && pp < q * (hi - x))
                    {
                        previousStep = step;
                        step = pp / q;
                        double candidate = x + step;
                        if (candidate - lo < tol2 || hi - candidate < tol2) step = x < middle ? tol1 : -tol1;
                        golden = false;
                    }
                }
                if (golden)
                {
                    previousStep = x >= middle ? lo - x : hi - x;
                    step = GoldenSection * previousStep;
                }
                double t = Math.Abs(step) >= tol1 ? x + step : x + (step > 0 ? tol1 : -tol1);
                double ft = EvaluateAt(u, direction, t);
                if (ft <= fx)
                {
                    if (t >= x) lo = x; else hi = x;
                    v = w; fv = fw;
                    w = x; fw = fx;
                    x = t; fx = ft;
                }
                else
                {
                    if (t < x) lo = t; else hi = t;
                    if (ft <= fw || w == x)
                    {
                        v = w; fv = fw;
                        w = t; fw = ft;
                    }
                    else if (ft <= fv || v == x || v == w)
                    {
                        v = t; fv = ft;
                    }
                }
            }
            fbest = fx;
            return x;
        }

        private readonly double EvaluateAt(ReadOnlySpan<double> u, ReadOnlySpan<double> direction, double t)
        {
            for (int k = 0; k < _d; k++) _candidates[k] = u[k] + t * direction[k];
            double score = 0;
            EvaluateCandidates(1, new Span<double>(&score, 1));
            return score;
        }
    }
}
