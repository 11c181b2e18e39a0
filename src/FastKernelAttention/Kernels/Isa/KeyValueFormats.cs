using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Kernels.Isa;

/// <summary>
/// How the decode kernel reads K and V elements stored as <typeparamref name="TKv"/> into registers of the compute type
/// <typeparamref name="T"/>: the native type as it is, or a 16-bit format widened in registers (exactly: every bf16 and
/// every half value is a float). Static members on a struct, so each (format, ISA path) is one specialised body.
/// </summary>
internal unsafe interface IKeyValueFormat<T, TVec, TKv>
    where T : unmanaged
    where TVec : unmanaged
    where TKv : unmanaged
{
    /// <summary>Loads one register's worth of elements (the path's lane count) from <paramref name="source"/>, widened to T.</summary>
    static abstract TVec Load(TKv* source);

    /// <summary>One element, widened to T (tails).</summary>
    static abstract T LoadScalar(TKv* source);
}

/// <summary>K and V stored in the compute type itself (float or double).</summary>
internal unsafe struct NativeFormat<T, TVec, TOps> : IKeyValueFormat<T, TVec, T>
    where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    where TVec : unmanaged
    where TOps : struct, ISimdOps<T, TVec>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load(T* source) => TOps.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T LoadScalar(T* source) => *source;
}

/// <summary>
/// bfloat16 bit patterns (the top 16 bits of a float) widened to float: zero-extend each 16-bit lane to 32 bits and shift
/// left by 16 (AVX-512: vpmovzxwd + vpslld; AVX2 the same on 8 lanes; Vector128 through the portable widen). Exact, and
/// NaN, ±∞ and subnormals come through unchanged. <typeparamref name="TVec"/> is a float register of the path.
/// </summary>
internal unsafe struct BFloat16Format<TVec> : IKeyValueFormat<float, TVec, ushort>
    where TVec : unmanaged
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load(ushort* source)
    {
        if (typeof(TVec) == typeof(Vector512<float>))
        {
            Vector512<uint> wide = Avx512F.ConvertToVector512UInt32(Vector256.Load(source));
            return (TVec)(object)Vector512.ShiftLeft(wide, 16).AsSingle();
        }
        if (typeof(TVec) == typeof(Vector256<float>))
        {
            Vector256<int> wide = Avx2.ConvertToVector256Int32(source);
            return (TVec)(object)Vector256.ShiftLeft(wide, 16).AsSingle();
        }
        if (typeof(TVec) == typeof(Vector128<float>))
        {
            Vector128<ushort> narrow = Vector128.CreateScalarUnsafe(*(ulong*)source).AsUInt16();
            return (TVec)(object)Vector128.ShiftLeft(Vector128.WidenLower(narrow), 16).AsSingle();
        }
        return (TVec)(object)LoadScalar(source);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(ushort* source) => System.BitConverter.Int32BitsToSingle(*source << 16);
}

/// <summary>
/// IEEE binary16 (<see cref="System.Half"/>) bit patterns widened to float without F16C (which .NET does not expose):
/// x = (sign-extended h &lt;&lt; 13) &amp; 0x8FFFE000 puts the sign at bit 31 and the exponent and mantissa at float
/// positions (the sign-extending load leaves copies of the sign above bit 15; the mask keeps the top one); x·2¹¹² moves the
/// exponent from bias 15 to bias 127 and is exact for normal and subnormal halves alike (the sign rides along); an all-ones
/// half exponent (±∞, NaN) gets an all-ones float exponent instead. A widening load, four integer operations, one multiply
/// and a select per register.
/// </summary>
internal unsafe struct HalfFormat<TVec> : IKeyValueFormat<float, TVec, ushort>
    where TVec : unmanaged
{
    private const uint MagnitudeMask = 0x7FFF;
    private const uint ExponentMask = 0x7C00;     // half exponent field
    private const uint FloatInfinity = 0x7F800000;
    private const float Rebias = 5.192297e33f;     // 2^112 = 2^(127 − 15)
    private const int SignedMagnitudeMask = unchecked((int)0x8FFFE000); // sign, then the 5 + 10 exponent and mantissa bits
    private const int ShiftedExponent = 0x0F800000;  // the half exponent field after the shifts
    private const int FloatInfinityBits = 0x7F800000;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load(ushort* source)
    {
        if (typeof(TVec) == typeof(Vector512<float>))
            return (TVec)(object)Widen(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)source)));
        if (typeof(TVec) == typeof(Vector256<float>))
            return (TVec)(object)Widen(Avx2.ConvertToVector256Int32((short*)source));
        if (typeof(TVec) == typeof(Vector128<float>))
        {
            Vector128<short> narrow = Vector128.CreateScalarUnsafe(*(ulong*)source).AsInt16();
            return (TVec)(object)Widen(Vector128.WidenLower(narrow));
        }
        return (TVec)(object)LoadScalar(source);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector512<int> h)
    {
        // x = sign | exponent and mantissa moved to float positions (h sign-extended: clear the copies of the sign).
        Vector512<int> x = Vector512.ShiftLeft(h, 13) & Vector512.Create(SignedMagnitudeMask);
        Vector512<float> finite = x.AsSingle() * Vector512.Create(Rebias);
        Vector512<int> special = Vector512.Equals(x & Vector512.Create(ShiftedExponent), Vector512.Create(ShiftedExponent));
        return Vector512.ConditionalSelect(special.AsSingle(), (x | Vector512.Create(FloatInfinityBits)).AsSingle(), finite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector256<int> h)
    {
        // x = sign | exponent and mantissa moved to float positions (h sign-extended: clear the copies of the sign).
        Vector256<int> x = Vector256.ShiftLeft(h, 13) & Vector256.Create(SignedMagnitudeMask);
        Vector256<float> finite = x.AsSingle() * Vector256.Create(Rebias);
        Vector256<int> special = Vector256.Equals(x & Vector256.Create(ShiftedExponent), Vector256.Create(ShiftedExponent));
        return Vector256.ConditionalSelect(special.AsSingle(), (x | Vector256.Create(FloatInfinityBits)).AsSingle(), finite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen(Vector128<int> h)
    {
        // x = sign | exponent and mantissa moved to float positions (h sign-extended: clear the copies of the sign).
        Vector128<int> x = Vector128.ShiftLeft(h, 13) & Vector128.Create(SignedMagnitudeMask);
        Vector128<float> finite = x.AsSingle() * Vector128.Create(Rebias);
        Vector128<int> special = Vector128.Equals(x & Vector128.Create(ShiftedExponent), Vector128.Create(ShiftedExponent));
        return Vector128.ConditionalSelect(special.AsSingle(), (x | Vector128.Create(FloatInfinityBits)).AsSingle(), finite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(ushort* source)
    {
        uint h = *source;
        uint magnitude = (h & MagnitudeMask) << 13;
        uint bits = (h & ExponentMask) == ExponentMask
            ? magnitude | FloatInfinity
            : System.BitConverter.SingleToUInt32Bits(System.BitConverter.UInt32BitsToSingle(magnitude) * Rebias);
        return System.BitConverter.UInt32BitsToSingle(bits | ((h >> 15) << 31));
    }
}
