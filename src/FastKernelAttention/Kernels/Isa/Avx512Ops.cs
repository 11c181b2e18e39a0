using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Kernels.Isa;

/// <summary>AVX-512F operations on <see cref="Vector512{T}"/>, T = float or double (branches on T fold away in the JIT).</summary>
internal unsafe struct Avx512Ops<T> : ISimdOps<T, Vector512<T>>
    where T : unmanaged
{
    public static int Count
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512<T>.Count;
    }

    public static Vector512<T> Zero
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512<T>.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Broadcast(T value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> BroadcastFrom(T* source) => Vector512.Create(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Load(T* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<T> value, T* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Add(Vector512<T> left, Vector512<T> right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Subtract(Vector512<T> left, Vector512<T> right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Multiply(Vector512<T> left, Vector512<T> right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Divide(Vector512<T> left, Vector512<T> right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> MultiplyAdd(Vector512<T> left, Vector512<T> right, Vector512<T> addend)
    {
        if (typeof(T) == typeof(float))
            return Avx512F.FusedMultiplyAdd(left.AsSingle(), right.AsSingle(), addend.AsSingle()).As<float, T>();
        return Avx512F.FusedMultiplyAdd(left.AsDouble(), right.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> NegatedMultiplyAdd(Vector512<T> left, Vector512<T> right, Vector512<T> addend)
    {
        if (typeof(T) == typeof(float))
            return Avx512F.FusedMultiplyAddNegated(left.AsSingle(), right.AsSingle(), addend.AsSingle()).As<float, T>();
        return Avx512F.FusedMultiplyAddNegated(left.AsDouble(), right.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Max(Vector512<T> left, Vector512<T> right)
    {
        if (typeof(T) == typeof(float))
            return Avx512F.Max(left.AsSingle(), right.AsSingle()).As<float, T>();
        return Avx512F.Max(left.AsDouble(), right.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Min(Vector512<T> left, Vector512<T> right)
    {
        if (typeof(T) == typeof(float))
            return Avx512F.Min(left.AsSingle(), right.AsSingle()).As<float, T>();
        return Avx512F.Min(left.AsDouble(), right.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> SelectLessThan(Vector512<T> left, Vector512<T> right, Vector512<T> ifTrue, Vector512<T> ifFalse)
        => Vector512.ConditionalSelect(Vector512.LessThan(left, right), ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> SelectEquals(Vector512<T> left, Vector512<T> right, Vector512<T> ifTrue, Vector512<T> ifFalse)
        => Vector512.ConditionalSelect(Vector512.Equals(left, right), ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> ShiftIntoExponent(Vector512<T> value)
    {
        if (typeof(T) == typeof(float))
            return Vector512.ShiftLeft(value.AsInt32(), 23).As<int, T>();
        return Vector512.ShiftLeft(value.AsInt64(), 52).As<long, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T HorizontalSum(Vector512<T> value)
    {
        Vector256<T> half = value.GetLower() + value.GetUpper();
        return Avx2Ops<T>.HorizontalSum(half);
    }
}
