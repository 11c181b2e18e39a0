using System.Runtime.CompilerServices;

namespace FastKernelAttention.Kernels.Isa;

/// <summary>
/// The vector operations a kernel body needs, as static members of a struct so that the JIT compiles one specialised body
/// per (element type, ISA path) with no capability checks inside the loops. <typeparamref name="TVec"/> is the register type
/// (<c>Vector512&lt;T&gt;</c>, <c>Vector256&lt;T&gt;</c>, <c>Vector128&lt;T&gt;</c>, or <typeparamref name="T"/> itself for the scalar path).
/// </summary>
/// <remarks>Lane order, FMA use and the order of every reduction are fixed per implementation: that is what makes a path
/// bitwise reproducible (MATH §4).</remarks>
internal unsafe interface ISimdOps<T, TVec>
    where T : unmanaged
    where TVec : unmanaged
{
    /// <summary>Lanes per register.</summary>
    static abstract int Count { get; }

    static abstract TVec Zero { get; }

    static abstract TVec Broadcast(T value);

    /// <summary>Broadcasts the element at <paramref name="source"/> (a memory-operand broadcast on x86).</summary>
    static abstract TVec BroadcastFrom(T* source);

    static abstract TVec Load(T* source);

    static abstract void Store(TVec value, T* destination);

    static abstract TVec Add(TVec left, TVec right);

    static abstract TVec Subtract(TVec left, TVec right);

    static abstract TVec Multiply(TVec left, TVec right);

    /// <summary>left · right + addend, fused where the path has FMA (fixed per path).</summary>
    static abstract TVec MultiplyAdd(TVec left, TVec right, TVec addend);

    /// <summary>addend − left · right, fused where the path has FMA.</summary>
    static abstract TVec NegatedMultiplyAdd(TVec left, TVec right, TVec addend);

    /// <summary>x86 max semantics: <c>left &gt; right ? left : right</c>, so a NaN in either returns <paramref name="right"/>.</summary>
    static abstract TVec Max(TVec left, TVec right);

    /// <summary>x86 min semantics: <c>left &lt; right ? left : right</c>, so a NaN in either returns <paramref name="right"/>.</summary>
    static abstract TVec Min(TVec left, TVec right);

    static abstract TVec Divide(TVec left, TVec right);

    /// <summary>Per lane: <c>left &lt; right ? ifTrue : ifFalse</c> (false for NaN).</summary>
    static abstract TVec SelectLessThan(TVec left, TVec right, TVec ifTrue, TVec ifFalse);

    /// <summary>Per lane: <c>left == right ? ifTrue : ifFalse</c>.</summary>
    static abstract TVec SelectEquals(TVec left, TVec right, TVec ifTrue, TVec ifFalse);

    /// <summary>Reinterprets the lanes as integers and shifts them left by the mantissa width (23 for float, 52 for
    /// double): turns the biased exponent held in the low bits into the exponent field (used by <see cref="Numerics.VectorExp"/>).</summary>
    static abstract TVec ShiftIntoExponent(TVec value);

    /// <summary>Sum of the lanes in a fixed order (lane pairs folded from the top half down).</summary>
    static abstract T HorizontalSum(TVec value);
}

/// <summary>Compile-time boolean for generic specialisation.</summary>
internal interface IFlag
{
    static abstract bool Value { get; }
}

internal struct TrueFlag : IFlag
{
    public static bool Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => true;
    }
}

internal struct FalseFlag : IFlag
{
    public static bool Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => false;
    }
}
