using System;

namespace Tulip;

/// <summary>
/// The loop's timers: a binary min-heap ordered by due time, then scheduling order. Owned by the
/// loop thread. Cancelled timers stay in the heap until they reach the top or until
/// <see cref="RemoveCancelled"/> sweeps them (asyncio purges when more than half are cancelled).
/// </summary>
internal sealed class TimerHeap
{
    private const int InitialCapacity = 16;

    private TimerHandle[] _heap = new TimerHandle[InitialCapacity];
    private int _count;

    public int Count => _count;

    public TimerHandle Peek() => _heap[0];

    public void Push(TimerHandle timer)
    {
        if (_count == _heap.Length)
        {
            Array.Resize(ref _heap, _heap.Length * 2);
        }

        timer.Scheduled = true;
        int i = _count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            var p = _heap[parent];
            if (!timer.RunsBefore(p))
            {
                break;
            }

            _heap[i] = p;
            i = parent;
        }

        _heap[i] = timer;
    }

    public TimerHandle Pop()
    {
        var top = _heap[0];
        top.Scheduled = false;
        int last = --_count;
        var moving = _heap[last];
        _heap[last] = null!;
        if (last > 0)
        {
            SiftDown(0, moving);
        }

        return top;
    }

    /// <summary>Drops every cancelled timer and gives back memory the heap no longer needs.</summary>
    public void RemoveCancelled()
    {
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            var t = _heap[i];
            if (t.Cancelled)
            {
                t.Scheduled = false;
            }
            else
            {
                _heap[kept++] = t;
            }
        }

        Array.Clear(_heap, kept, _count - kept);
        _count = kept;
        int wanted = Math.Max(InitialCapacity, kept * 2);
        if (_heap.Length > wanted * 2)
        {
            Array.Resize(ref _heap, wanted);
        }

        for (int i = (_count >> 1) - 1; i >= 0; i--)
        {
            SiftDown(i, _heap[i]);
        }
    }

    public void Clear()
    {
        for (int i = 0; i < _count; i++)
        {
            _heap[i].Scheduled = false;
        }

        _heap = new TimerHandle[InitialCapacity];
        _count = 0;
    }

    private void SiftDown(int i, TimerHandle moving)
    {
        int n = _count;
        while (true)
        {
            int child = (i << 1) + 1;
            if (child >= n)
            {
                break;
            }

            var c = _heap[child];
            int right = child + 1;
            if (right < n && _heap[right].RunsBefore(c))
            {
                child = right;
                c = _heap[right];
            }

            if (!c.RunsBefore(moving))
            {
                break;
            }

            _heap[i] = c;
            i = child;
        }

        _heap[i] = moving;
    }
}
