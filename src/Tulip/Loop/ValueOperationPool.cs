using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;

namespace Tulip;

/// <summary>
/// The free operations of one kind a loop keeps for its <c>Sock*ValueAsync</c> calls, so the steady
/// state of a call that waits allocates nothing: up to <see cref="Size"/> waiting at once are reused,
/// more are made and dropped after use. Owned by the loop thread. A mutable struct: keep it in a
/// field and call it there, never on a copy.
/// </summary>
internal struct ValueOperationPool<T>
    where T : LoopValueOperation
{
    /// <summary>How many free operations are kept: the size of the receive and send pools (ValueOperationPoolSize).</summary>
    public const int Size = 16;

    private Stack<T>? _free;

    /// <summary>A free operation, or false: make a new one.</summary>
    public bool TryRent([NotNullWhen(true)] out T? operation) =>
        (_free is { Count: > 0 } free ? operation = free.Pop() : operation = null) is not null;

    /// <summary>Keeps <paramref name="operation"/>, whose use is over, unless the pool is full.</summary>
    public void Return(T operation)
    {
        _free ??= new Stack<T>();
        if (_free.Count < Size)
        {
            _free.Push(operation);
        }
    }
}
