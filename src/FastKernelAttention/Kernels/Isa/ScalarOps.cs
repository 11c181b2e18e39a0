using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace FastKernelAttention.Kernels.Isa;

/// <summary>Scalar operations (one lane, the register type is T itself), T = float or double.</summary>
/// <remarks>Multiply-add is always fused (<c>T.FusedMultiplyAdd</c>), so the path is reproducible everywhere; on hardware
/// without FMA that is a software routine and slow, which is acceptable for the fallback path.</remarks>
internal unsafe struct ScalarOps<T> : ISimdOps<T, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public static int Count
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => 1;
    }

    public static T Zero
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => T.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Broadcast(T value) => value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T BroadcastFrom(T* source) => *source;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Load(T* source) => *source;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(T value, T* destination) => *destination = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Add(T left, T right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Subtract(T left, T right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Multiply(T left, T right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Divide(T left, T right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MultiplyAdd(T left, T right, T addend) => T.FusedMultiplyAdd(left, right, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T NegatedMultiplyAdd(T left, T right, T addend) => T.FusedMultiplyAdd(-left, right, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Max(T left, T right) => left > right ? left : right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Min(T left, T right) => left < right ? left : right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SelectLessThan(T left, T right, T ifTrue, T ifFalse) => left < right ? ifTrue : ifFalse;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SelectEquals(T left, T right, T ifTrue, T ifFalse) => left == right ? ifTrue : ifFalse;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T ShiftIntoExponent(T value)
    {
        if (typeof(T) == typeof(float))
        {
            float shifted = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(Unsafe.As<T, float>(ref value)) << 23);
            return Unsafe.As<float, T>(ref shifted);
        }
        double result = BitConverter.Int64BitsToDouble(BitConverter.DoubleToInt64Bits(Unsafe.As<T, double>(ref value)) << 52);
        return Unsafe.As<double, T>(ref result);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HorizontalSum(T value) => value;
}
