using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Kernels.Isa;

/// <summary>Portable 128-bit operations on <see cref="Vector128{T}"/> (SSE/FMA on x64, AdvSimd on ARM64), T = float or double.</summary>
/// <remarks>Multiply-add is fused where the hardware has it (FMA3, AdvSimd) and unfused otherwise; max/min keep the x86
/// operand semantics on every platform so that NaN handling is the same everywhere.</remarks>
internal unsafe struct Vector128Ops<T> : ISimdOps<T, Vector128<T>>
    where T : unmanaged
{
    public static int Count
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector128<T>.Count;
    }

    public static Vector128<T> Zero
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector128<T>.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Broadcast(T value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> BroadcastFrom(T* source) => Vector128.Create(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Load(T* source) => Vector128.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<T> value, T* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Add(Vector128<T> left, Vector128<T> right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Subtract(Vector128<T> left, Vector128<T> right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Multiply(Vector128<T> left, Vector128<T> right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Divide(Vector128<T> left, Vector128<T> right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> MultiplyAdd(Vector128<T> left, Vector128<T> right, Vector128<T> addend)
    {
        if (Fma.IsSupported)
        {
            if (typeof(T) == typeof(float))
                return Fma.MultiplyAdd(left.AsSingle(), right.AsSingle(), addend.AsSingle()).As<float, T>();
            return Fma.MultiplyAdd(left.AsDouble(), right.AsDouble(), addend.AsDouble()).As<double, T>();
        }
        if (AdvSimd.Arm64.IsSupported)
        {
            if (typeof(T) == typeof(float))
                return AdvSimd.FusedMultiplyAdd(addend.AsSingle(), left.AsSingle(), right.AsSingle()).As<float, T>();
            return AdvSimd.Arm64.FusedMultiplyAdd(addend.AsDouble(), left.AsDouble(), right.AsDouble()).As<double, T>();
        }
        return left * right + addend;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> NegatedMultiplyAdd(Vector128<T> left, Vector128<T> right, Vector128<T> addend)
    {
        if (Fma.IsSupported)
        {
            if (typeof(T) == typeof(float))
                return Fma.MultiplyAddNegated(left.AsSingle(), right.AsSingle(), addend.AsSingle()).As<float, T>();
            return Fma.MultiplyAddNegated(left.AsDouble(), right.AsDouble(), addend.AsDouble()).As<double, T>();
        }
        if (AdvSimd.Arm64.IsSupported)
        {
            if (typeof(T) == typeof(float))
                return AdvSimd.FusedMultiplySubtract(addend.AsSingle(), left.AsSingle(), right.AsSingle()).As<float, T>();
            return AdvSimd.Arm64.FusedMultiplySubtract(addend.AsDouble(), left.AsDouble(), right.AsDouble()).As<double, T>();
        }
        return addend - left * right;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Max(Vector128<T> left, Vector128<T> right)
    {
        if (Sse.IsSupported && typeof(T) == typeof(float))
            return Sse.Max(left.AsSingle(), right.AsSingle()).As<float, T>();
        if (Sse2.IsSupported && typeof(T) == typeof(double))
            return Sse2.Max(left.AsDouble(), right.AsDouble()).As<double, T>();
        return Vector128.ConditionalSelect(Vector128.GreaterThan(left, right), left, right);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Min(Vector128<T> left, Vector128<T> right)
    {
        if (Sse.IsSupported && typeof(T) == typeof(float))
            return Sse.Min(left.AsSingle(), right.AsSingle()).As<float, T>();
        if (Sse2.IsSupported && typeof(T) == typeof(double))
            return Sse2.Min(left.AsDouble(), right.AsDouble()).As<double, T>();
        return Vector128.ConditionalSelect(Vector128.LessThan(left, right), left, right);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> SelectLessThan(Vector128<T> left, Vector128<T> right, Vector128<T> ifTrue, Vector128<T> ifFalse)
        => Vector128.ConditionalSelect(Vector128.LessThan(left, right), ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> SelectEquals(Vector128<T> left, Vector128<T> right, Vector128<T> ifTrue, Vector128<T> ifFalse)
        => Vector128.ConditionalSelect(Vector128.Equals(left, right), ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> ShiftIntoExponent(Vector128<T> value)
    {
        if (typeof(T) == typeof(float))
            return Vector128.ShiftLeft(value.AsInt32(), 23).As<int, T>();
        return Vector128.ShiftLeft(value.AsInt64(), 52).As<long, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HorizontalSum(Vector128<T> value)
    {
        // Fixed order: (e0 + e2) + (e1 + e3) for float, e0 + e1 for double.
        if (typeof(T) == typeof(float))
        {
            Vector128<float> v = value.AsSingle();
            float sum = (v.GetElement(0) + v.GetElement(2)) + (v.GetElement(1) + v.GetElement(3));
            return Unsafe.As<float, T>(ref sum);
        }
        Vector128<double> w = value.AsDouble();
        double total = w.GetElement(0) + w.GetElement(1);
        return Unsafe.As<double, T>(ref total);
    }
}
