using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Kernels.Isa;

/// <summary>AVX2 + FMA3 operations on <see cref="Vector256{T}"/>, T = float or double (branches on T fold away in the JIT).</summary>
internal unsafe struct Avx2Ops<T> : ISimdOps<T, Vector256<T>>
    where T : unmanaged
{
    public static int Count
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256<T>.Count;
    }

    public static Vector256<T> Zero
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256<T>.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Broadcast(T value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> BroadcastFrom(T* source) => Vector256.Create(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Load(T* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<T> value, T* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Add(Vector256<T> left, Vector256<T> right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Subtract(Vector256<T> left, Vector256<T> right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Multiply(Vector256<T> left, Vector256<T> right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Divide(Vector256<T> left, Vector256<T> right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> MultiplyAdd(Vector256<T> left, Vector256<T> right, Vector256<T> addend)
    {
        if (typeof(T) == typeof(float))
            return Fma.MultiplyAdd(left.AsSingle(), right.AsSingle(), addend.AsSingle()).As<float, T>();
        return Fma.MultiplyAdd(left.AsDouble(), right.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> NegatedMultiplyAdd(Vector256<T> left, Vector256<T> right, Vector256<T> addend)
    {
        if (typeof(T) == typeof(float))
            return Fma.MultiplyAddNegated(left.AsSingle(), right.AsSingle(), addend.AsSingle()).As<float, T>();
        return Fma.MultiplyAddNegated(left.AsDouble(), right.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Max(Vector256<T> left, Vector256<T> right)
    {
        if (typeof(T) == typeof(float))
            return Avx.Max(left.AsSingle(), right.AsSingle()).As<float, T>();
        return Avx.Max(left.AsDouble(), right.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Min(Vector256<T> left, Vector256<T> right)
    {
        if (typeof(T) == typeof(float))
            return Avx.Min(left.AsSingle(), right.AsSingle()).As<float, T>();
        return Avx.Min(left.AsDouble(), right.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> SelectLessThan(Vector256<T> left, Vector256<T> right, Vector256<T> ifTrue, Vector256<T> ifFalse)
        => Vector256.ConditionalSelect(Vector256.LessThan(left, right), ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> SelectEquals(Vector256<T> left, Vector256<T> right, Vector256<T> ifTrue, Vector256<T> ifFalse)
        => Vector256.ConditionalSelect(Vector256.Equals(left, right), ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> ShiftIntoExponent(Vector256<T> value)
    {
        if (typeof(T) == typeof(float))
            return Vector256.ShiftLeft(value.AsInt32(), 23).As<int, T>();
        return Vector256.ShiftLeft(value.AsInt64(), 52).As<long, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HorizontalSum(Vector256<T> value)
    {
        Vector128<T> half = value.GetLower() + value.GetUpper();
        return Vector128Ops<T>.HorizontalSum(half);
    }
}
