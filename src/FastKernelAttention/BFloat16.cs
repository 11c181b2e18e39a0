using System;
using System.Globalization;

namespace FastKernelAttention;

/// <summary>
/// A bfloat16 value: the top 16 bits of an IEEE binary32 float (1 sign, 8 exponent, 7 mantissa bits), the storage format
/// of K and V in <see cref="Attention.ForwardMultiHead(CommunityToolkit.HighPerformance.ReadOnlySpan2D{float}, CommunityToolkit.HighPerformance.ReadOnlySpan2D{BFloat16}, CommunityToolkit.HighPerformance.ReadOnlySpan2D{BFloat16}, CommunityToolkit.HighPerformance.Span2D{float}, int, int, in AttentionOptions, Span{float}, ReadOnlySpan{float})"/>.
/// </summary>
/// <remarks>
/// <para>A storage type only (neither .NET 8 nor .NET 10 has a public bfloat16): 2 bytes, layout-compatible with the raw bit
/// patterns other libraries write (<see cref="FromBits"/>, <see cref="Bits"/>), so an existing buffer can be reinterpreted
/// with <c>MemoryMarshal.Cast&lt;ushort, BFloat16&gt;</c>.</para>
/// <para>Widening to float is exact (a 16-bit shift). Narrowing from float rounds to nearest, ties to even; values beyond
/// the largest bfloat16 (≈ 3.39e38) become ±∞; NaN stays NaN (quiet, sign kept).</para>
/// <para>Equality compares bit patterns: NaN equals a NaN of the same bits, and +0 differs from −0.</para>
/// </remarks>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    private readonly ushort bits;

    private BFloat16(ushort bits) => this.bits = bits;

    /// <summary>The raw bit pattern (the top 16 bits of the float it stands for).</summary>
    public ushort Bits => bits;

    /// <summary>The bfloat16 with bit pattern <paramref name="bits"/>.</summary>
    /// <param name="bits">Sign, 8 exponent and 7 mantissa bits, as in the top half of a float.</param>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Rounds <paramref name="value"/> to the nearest bfloat16 (ties to even); NaN stays NaN, overflow gives ±∞.</summary>
    /// <param name="value">Any float.</param>
    public static explicit operator BFloat16(float value)
    {
        uint b = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return new BFloat16((ushort)((b >> 16) | 0x0040)); // quiet NaN, sign and top payload kept
        uint roundingBias = 0x7FFF + ((b >> 16) & 1);
        return new BFloat16((ushort)((b + roundingBias) >> 16));
    }

    /// <summary>The exact float value of <paramref name="value"/>.</summary>
    /// <param name="value">Any bfloat16.</param>
    public static explicit operator float(BFloat16 value) => BitConverter.Int32BitsToSingle(value.bits << 16);

    /// <summary>Bitwise equality of two bfloat16 values.</summary>
    /// <param name="left">A value.</param>
    /// <param name="right">Another value.</param>
    public static bool operator ==(BFloat16 left, BFloat16 right) => left.bits == right.bits;

    /// <summary>Bitwise inequality of two bfloat16 values.</summary>
    /// <param name="left">A value.</param>
    /// <param name="right">Another value.</param>
    public static bool operator !=(BFloat16 left, BFloat16 right) => left.bits != right.bits;

    /// <summary>Bitwise equality with <paramref name="other"/>.</summary>
    /// <param name="other">Another value.</param>
    public bool Equals(BFloat16 other) => bits == other.bits;

    /// <summary>Bitwise equality with a boxed <see cref="BFloat16"/>.</summary>
    /// <param name="obj">Any object.</param>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <summary>The bit pattern as a hash code.</summary>
    public override int GetHashCode() => bits;

    /// <summary>The float value, formatted with the invariant culture.</summary>
    public override string ToString() => ((float)this).ToString(CultureInfo.InvariantCulture);
}
