using System;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>
/// One entry of the ready queue: a callback and two arguments, so futures, tasks and transports
/// schedule work without allocating a handle or a closure. Public handles use
/// <see cref="BaseEventLoop"/>'s static "run this handle" callback with the handle as argument.
/// </summary>
internal readonly struct ReadyItem
{
    public readonly Action<object?, object?> Callback;
    public readonly object? Arg1;
    public readonly object? Arg2;

    public ReadyItem(Action<object?, object?> callback, object? arg1, object? arg2)
    {
        Callback = callback;
        Arg1 = arg1;
        Arg2 = arg2;
    }
}

/// <summary>
/// The FIFO of callbacks ready to run: a growable ring buffer. Owned by the loop thread.
/// </summary>
internal sealed class ReadyQueue
{
    private ReadyItem[] _items = new ReadyItem[256];
    private int _head;
    private int _count;

    public int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enqueue(in ReadyItem item)
    {
        var items = _items;
        if (_count == items.Length)
        {
            Grow();
            items = _items;
        }

        int tail = _head + _count;
        if (tail >= items.Length)
        {
            tail -= items.Length;
        }

        items[tail] = item;
        _count++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadyItem Dequeue()
    {
        var items = _items;
        int head = _head;
        ReadyItem item = items[head];
        items[head] = default;
        head++;
        _head = head == items.Length ? 0 : head;
        _count--;
        return item;
    }

    public void Clear()
    {
        Array.Clear(_items);
        _head = 0;
        _count = 0;
    }

    private void Grow()
    {
        var bigger = new ReadyItem[_items.Length * 2];
        int firstPart = Math.Min(_count, _items.Length - _head);
        Array.Copy(_items, _head, bigger, 0, firstPart);
        Array.Copy(_items, 0, bigger, firstPart, _count - firstPart);
        _items = bigger;
        _head = 0;
    }
}
