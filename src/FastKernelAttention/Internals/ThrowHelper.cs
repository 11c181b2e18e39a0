using System;
using System.Diagnostics.CodeAnalysis;

namespace FastKernelAttention.Internals;

/// <summary>Throw sites kept out of the entry points so that they stay small and inlinable.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowShape(string parameter, string expected, int rows, int columns) =>
        throw new ArgumentException($"Expected {expected}, got {rows}×{columns}.", parameter);

    [DoesNotReturn]
    public static void ThrowLength(string parameter, string expected, int actual) =>
        throw new ArgumentException($"Expected {expected}, got length {actual}.", parameter);

    [DoesNotReturn]
    public static void ThrowArgument(string parameter, string message) =>
        throw new ArgumentException(message, parameter);

    [DoesNotReturn]
    public static void ThrowOutOfRange(string parameter, object? actual, string message) =>
        throw new ArgumentOutOfRangeException(parameter, actual, message);

    [DoesNotReturn]
    public static void ThrowOverlap(string parameter, string other) =>
        throw new ArgumentException($"'{parameter}' overlaps '{other}': outputs must not share memory with any input or with each other.", parameter);

    [DoesNotReturn]
    public static void ThrowWorkspace(string parameter, long required, int actual) =>
        throw new ArgumentException($"The workspace needs at least {required} bytes (Attention.GetWorkspaceSize), got {actual}.", parameter);
}
