using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastKernelAttention.Numerics;

/// <summary>
/// Whether floating-point data holds ±∞ or NaN, by the exponent field: all ones only for those. The largest exponent field
/// seen per 32-bit lane is kept with an unsigned max (one-cycle steps; a sum of x − x, whose add chain bounded the check,
/// was slower), so the test also rides along in a copy (the packed K/V copy folds each register it moves).
/// </summary>
internal static unsafe class FiniteCheck<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>The exponent field of T in each element's 32-bit lanes (for double only the upper lane of each pair).</summary>
    public static Vector256<uint> Mask
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => typeof(T) == typeof(float) ? Vector256.Create(0x7F800000u) : Vector256.Create(0x7FF0000000000000ul).AsUInt32();
    }

    /// <summary>Folds the exponent fields of <paramref name="x"/> into <paramref name="exponents"/> (start from zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> Fold(Vector256<uint> exponents, Vector256<T> x, Vector256<uint> mask) => Vector256.Max(exponents, x.AsUInt32() & mask);

    /// <summary>True when a lane of the folded <paramref name="exponents"/> is all ones in the exponent field.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyNonFinite(Vector256<uint> exponents, Vector256<uint> mask) => (Vector256.Equals(exponents, mask) & mask) != Vector256<uint>.Zero;

    /// <summary>Copies <paramref name="count"/> elements, folding the vector part's exponent fields into
    /// <paramref name="exponents"/> on the way; returns whether the scalar tail is finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool CopyRow(T* source, T* destination, int count, Vector256<uint> mask, ref Vector256<uint> exponents)
    {
        int e = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // In bounds: e + Count ≤ count at both ends.
            for (; e + Vector256<T>.Count <= count; e += Vector256<T>.Count)
            {
                Vector256<T> x = Vector256.Load(source + e);
                x.Store(destination + e);
                exponents = Fold(exponents, x, mask);
            }
        }
        bool finite = true;
        for (; e < count; e++)
        {
            T x = source[e];
            destination[e] = x;
            finite &= T.IsFinite(x);
        }
        return finite;
    }

    /// <summary>True when every element of the rows × columns block (rows <paramref name="stride"/> elements apart) is finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool AllFinite(T* values, nint stride, int rowCount, int columns)
    {
        Vector256<uint> mask = Mask;
        Vector256<uint> exponents = Vector256<uint>.Zero;
        bool finite = true;
        for (int r = 0; r < rowCount; r++)
        {
            T* row = values + (nint)r * stride;
            int c = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                // In bounds: c + Count ≤ columns of the row.
                for (; c + Vector256<T>.Count <= columns; c += Vector256<T>.Count) exponents = Fold(exponents, Vector256.Load(row + c), mask);
            }
            for (; c < columns; c++) finite &= T.IsFinite(row[c]);
        }
        return finite && !AnyNonFinite(exponents, mask);
    }
}
