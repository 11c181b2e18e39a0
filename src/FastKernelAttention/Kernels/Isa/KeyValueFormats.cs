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
/// f = bits((h &amp; 0x7FFF) &lt;&lt; 13) · 2¹¹² moves the exponent from bias 15 to bias 127 and is exact for normal and
/// subnormal halves alike; an all-ones half exponent (±∞, NaN) is rebuilt with an all-ones float exponent; the sign is
/// OR-ed back. Five integer operations and one multiply per register.
/// </summary>
internal unsafe struct HalfFormat<TVec> : IKeyValueFormat<float, TVec, ushort>
    where TVec : unmanaged
{
    private const uint MagnitudeMask = 0x7FFF;
    private const uint ExponentMask = 0x7C00;     // half exponent field
    private const uint FloatInfinity = 0x7F800000;
    private const float Rebias = 5.192297e33f;     // 2^112 = 2^(127 − 15)

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load(ushort* source)
    {
        if (typeof(TVec) == typeof(Vector512<float>))
        {
            Vector512<uint> h = Avx512F.ConvertToVector512UInt32(Vector256.Load(source));
            return (TVec)(object)Widen(h);
        }
        if (typeof(TVec) == typeof(Vector256<float>))
        {
            Vector256<uint> h = Avx2.ConvertToVector256Int32(source).AsUInt32();
            return (TVec)(object)Widen(h);
        }
        if (typeof(TVec) == typeof(Vector128<float>))
        {
            Vector128<ushort> narrow = Vector128.CreateScalarUnsafe(*(ulong*)source).AsUInt16();
            return (TVec)(object)Widen(Vector128.WidenLower(narrow));
        }
        return (TVec)(object)LoadScalar(source);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector512<uint> h)
    {
        Vector512<uint> magnitude = Vector512.ShiftLeft(h & Vector512.Create(MagnitudeMask), 13);
        Vector512<float> finite = magnitude.AsSingle() * Vector512.Create(Rebias);
        Vector512<uint> special = Vector512.Equals(h & Vector512.Create(ExponentMask), Vector512.Create(ExponentMask));
        Vector512<uint> bits = Vector512.ConditionalSelect(special, magnitude | Vector512.Create(FloatInfinity), finite.AsUInt32());
        return (bits | Vector512.ShiftLeft(Vector512.ShiftRightLogical(h, 15), 31)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector256<uint> h)
    {
        Vector256<uint> magnitude = Vector256.ShiftLeft(h & Vector256.Create(MagnitudeMask), 13);
        Vector256<float> finite = magnitude.AsSingle() * Vector256.Create(Rebias);
        Vector256<uint> special = Vector256.Equals(h & Vector256.Create(ExponentMask), Vector256.Create(ExponentMask));
        Vector256<uint> bits = Vector256.ConditionalSelect(special, magnitude | Vector256.Create(FloatInfinity), finite.AsUInt32());
        return (bits | Vector256.ShiftLeft(Vector256.ShiftRightLogical(h, 15), 31)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen(Vector128<uint> h)
    {
        Vector128<uint> magnitude = Vector128.ShiftLeft(h & Vector128.Create(MagnitudeMask), 13);
        Vector128<float> finite = magnitude.AsSingle() * Vector128.Create(Rebias);
        Vector128<uint> special = Vector128.Equals(h & Vector128.Create(ExponentMask), Vector128.Create(ExponentMask));
        Vector128<uint> bits = Vector128.ConditionalSelect(special, magnitude | Vector128.Create(FloatInfinity), finite.AsUInt32());
        return (bits | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 15), 31)).AsSingle();
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
