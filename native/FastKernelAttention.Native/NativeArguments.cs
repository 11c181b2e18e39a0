using System;

namespace FastKernelAttention.Native;

/// <summary>The checks every export makes before it builds a span: sizes, overflow, pitches, pointers and the options struct.
/// Each returns a status and records the message; nothing here reads caller memory except the options struct.</summary>
internal static unsafe class NativeArguments
{
    /// <summary>Sizes that must be ≥ <paramref name="minimum"/> (FKA_ERR_SHAPE) and ≤ int.MaxValue (FKA_ERR_OVERFLOW).</summary>
    public static int Size(string function, string name, long value, long minimum, out int result)
    {
        result = 0;
        if (value < minimum)
            return LastError.Set(FkaStatus.Shape, $"{function}: {name} must be at least {minimum}, got {value}.");
        if (value > int.MaxValue)
            return LastError.Set(FkaStatus.Overflow, $"{function}: {name} = {value} exceeds the supported maximum {int.MaxValue}.");
        result = (int)value;
        return FkaStatus.Ok;
    }

    /// <summary>A product of two sizes (e.g. head_count·head_dim) that must fit an int.</summary>
    public static int Product(string function, string name, int left, int right, out int result)
    {
        long product = (long)left * right;
        result = 0;
        if (product > int.MaxValue)
            return LastError.Set(FkaStatus.Overflow, $"{function}: {name} = {left}·{right} = {product} exceeds the supported maximum {int.MaxValue}.");
        result = (int)product;
        return FkaStatus.Ok;
    }

    /// <summary>
    /// One row-major matrix of <paramref name="rows"/> × <paramref name="width"/> elements with a row pitch in elements
    /// (0 = <paramref name="width"/>): checks the pitch, the byte extent (checked arithmetic) and the pointer, and gives the
    /// pitch to use.
    /// </summary>
    public static int Matrix(string function, string name, void* pointer, int rows, int width, long pitch, int elementSize, out int pitchElements)
    {
        pitchElements = 0;
        if (pitch < 0)
            return LastError.Set(FkaStatus.Shape, $"{function}: {name}_pitch must be 0 (= width) or at least the width {width}, got {pitch}.");
        if (pitch == 0) pitch = width;
        if (pitch < width)
            return LastError.Set(FkaStatus.Shape, $"{function}: {name}_pitch = {pitch} is smaller than the row width {width}.");
        if (pitch > int.MaxValue)
            return LastError.Set(FkaStatus.Overflow, $"{function}: {name}_pitch = {pitch} exceeds the supported maximum {int.MaxValue}.");
        if (rows > 0 && width > 0)
        {
            try
            {
                long extentBytes = checked((((long)rows - 1) * pitch + width) * elementSize);
                if (extentBytes > (long)nint.MaxValue)
                    return LastError.Set(FkaStatus.Overflow, $"{function}: {name} spans {extentBytes} bytes, more than the address space.");
            }
            catch (OverflowException)
            {
                return LastError.Set(FkaStatus.Overflow, $"{function}: the byte extent of {name} ({rows} rows, pitch {pitch}) overflows.");
            }
            if (pointer == null)
                return LastError.Set(FkaStatus.NullPointer, $"{function}: {name} is NULL but has {rows}×{width} elements.");
        }
        pitchElements = (int)pitch;
        return FkaStatus.Ok;
    }

    /// <summary>A vector of <paramref name="length"/> elements: NULL is an error (FKA_ERR_NULL_POINTER) unless it is
    /// <paramref name="optional"/> or empty. The length is an int already checked, so its byte extent fits.</summary>
    public static int Vector(string function, string name, void* pointer, int length, bool optional)
    {
        if (pointer == null && length > 0 && !optional)
            return LastError.Set(FkaStatus.NullPointer, $"{function}: {name} is NULL but has {length} elements.");
        return FkaStatus.Ok;
    }

    /// <summary>A workspace: workspace_bytes ≥ 0 (FKA_ERR_WORKSPACE) and a pointer when it is positive (FKA_ERR_NULL_POINTER).</summary>
    public static int Workspace(string function, void* workspace, long workspaceBytes)
    {
        if (workspaceBytes < 0)
            return LastError.Set(FkaStatus.Workspace, $"{function}: workspace_bytes must not be negative, got {workspaceBytes}.");
        if (workspace == null && workspaceBytes > 0)
            return LastError.Set(FkaStatus.NullPointer, $"{function}: workspace is NULL but workspace_bytes = {workspaceBytes}.");
        return FkaStatus.Ok;
    }

    /// <summary>
    /// No output may share memory with an input or with an earlier output: <paramref name="extents"/> lists the inputs
    /// first, then the outputs from index <paramref name="firstOutput"/> on (the workspace counts as an output). Inputs may
    /// overlap each other. Returns FKA_ERR_ARGUMENT naming the two arguments.
    /// </summary>
    public static int NoOverlap(string function, ReadOnlySpan<Extent> extents, ReadOnlySpan<string> names, int firstOutput)
    {
        for (int output = firstOutput; output < extents.Length; output++)
        {
            for (int other = 0; other < output; other++)
            {
                if (extents[output].Overlaps(in extents[other]))
                    return LastError.Set(FkaStatus.Argument, $"{function}: {names[output]} overlaps {names[other]}: outputs must not share memory with any input or with each other.");
            }
        }
        return FkaStatus.Ok;
    }

    /// <summary>Reads the options struct (NULL = defaults) into <see cref="AttentionOptions"/>.</summary>
    public static int Options(string function, FkaAttentionOptions* native, out AttentionOptions options)
    {
        options = default;
        if (native == null) return FkaStatus.Ok;
        uint size = native->StructSize;
        if (size < FkaAttentionOptions.Version1Size)
            return LastError.Set(FkaStatus.Argument, $"{function}: options->struct_size = {size}; set it to sizeof(fka_attention_options) (at least {FkaAttentionOptions.Version1Size}).");
        if (size > FkaAttentionOptions.MaxSize)
            return LastError.Set(FkaStatus.Argument, $"{function}: options->struct_size = {size} exceeds {FkaAttentionOptions.MaxSize}; it must be sizeof(fka_attention_options).");
        byte* bytes = (byte*)native;
        for (uint i = FkaAttentionOptions.Version1Size; i < size; i++)
        {
            if (bytes[i] != 0)
                return LastError.Set(FkaStatus.Argument, $"{function}: options sets fields (byte {i}) that this library version ({ExportsInfo.VersionText}) does not know.");
        }
        if (native->Reserved != 0)
            return LastError.Set(FkaStatus.Argument, $"{function}: options->reserved must be 0, got {native->Reserved}.");
        if (native->Kernel is not (0 or 1))
            return LastError.Set(FkaStatus.Argument, $"{function}: options->kernel = {native->Kernel} is not FKA_KERNEL_DOT (0) or FKA_KERNEL_GAUSSIAN (1).");
        if (double.IsNaN(native->Bandwidth))
            return LastError.Set(FkaStatus.Argument, $"{function}: options->bandwidth is NaN.");
        double scale = native->Scale;
        options = new AttentionOptions
        {
            Kernel = (AttentionKernel)native->Kernel,
            Scale = scale == 0 || double.IsNaN(scale) ? null : scale,
            Bandwidth = native->Bandwidth,
            Causal = native->Causal != 0,
            SinkLogit = native->HasSinkLogit != 0 ? native->SinkLogit : null,
            MaxDegreeOfParallelism = native->MaxThreads,
        };
        return FkaStatus.Ok;
    }

    /// <summary>Maps an exception from the managed library to a status and records its message. The shapes were checked
    /// before the spans were built, so what the managed checks still find is an option, a value (sink logits), an
    /// overlap (FKA_ERR_ARGUMENT) or the workspace size (FKA_ERR_WORKSPACE).</summary>
    public static int FromException(string function, Exception exception)
    {
        int status = exception switch
        {
            ArgumentException { ParamName: "workspace" } => FkaStatus.Workspace,
            ArgumentException => FkaStatus.Argument,
            OutOfMemoryException => FkaStatus.OutOfMemory,
            _ => FkaStatus.Internal,
        };
        string kind = status == FkaStatus.Internal ? exception.GetType().Name + ": " : "";
        return LastError.Set(status, $"{function}: {kind}{exception.Message}");
    }
}

/// <summary>The bytes [Start, End) that a matrix or vector argument spans (empty when it has no elements or is NULL), for the
/// overlap checks. Built only from arguments whose extents were checked (no overflow).</summary>
internal readonly unsafe struct Extent
{
    public readonly nuint Start, End;

    /// <summary>A matrix of <paramref name="rows"/> × <paramref name="width"/> elements with a row pitch in elements.</summary>
    public Extent(void* pointer, int rows, int width, int pitch, int elementSize)
    {
        if (pointer == null || rows <= 0 || width <= 0) return;
        Start = (nuint)pointer;
        End = Start + (nuint)((((long)rows - 1) * pitch + width) * elementSize);
    }

    /// <summary>A vector of <paramref name="length"/> elements.</summary>
    public static Extent Vector(void* pointer, long length, int elementSize) => new(pointer, length > 0 ? 1 : 0, (int)Math.Min(length, int.MaxValue), 0, elementSize);

    /// <summary>Whether both are non-empty and share at least one byte.</summary>
    public bool Overlaps(in Extent other) => Start < End && other.Start < other.End && Start < other.End && other.Start < End;
}
