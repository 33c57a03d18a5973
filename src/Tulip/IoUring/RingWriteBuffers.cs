using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip.IoUring;

/// <summary>
/// The write backlog of an io_uring stream transport (socket or pipe): the array one ring send or
/// write is taking bytes from, and the array later writes gather in meanwhile, both pinned
/// (<see cref="PinnedBufferPool"/>) because the kernel reads them by address. One operation at a time:
/// when it completes, its rest goes again or the gathered array takes its place, so bytes leave in
/// the order they were written. Owned by the loop thread, one per transport.
/// </summary>
/// <remarks>
/// An array the kernel may still read (<see cref="InKernel"/>) is never given back or reused before
/// its operation's last completion; dropping the backlog (abort, a fatal error) only counts its bytes
/// as gone until then.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class RingWriteBuffers(PinnedBufferPool pool)
{
    // In flight: bytes [_start, _end) of _sending.
    private byte[]? _sending;
    private int _start;
    private int _end;
    // Gathered meanwhile: bytes [0, _gatheredEnd) of _gathered; null when empty.
    private byte[]? _gathered;
    private int _gatheredEnd;

    /// <summary>Bytes not yet taken by the kernel: the in-flight rest and everything gathered.</summary>
    public int Count => (_end - _start) + _gatheredEnd;

    /// <summary>Whether the kernel holds the in-flight operation (and may read its array) until its completion.</summary>
    public bool InKernel { get; set; }

    /// <summary>Whether bytes are gathered behind the one in flight.</summary>
    public bool HasGathered => _gathered is not null;

    /// <summary>What is gathered, for a first attempt to write it at once.</summary>
    public ReadOnlySpan<byte> Gathered => new(_gathered, 0, _gatheredEnd);

    /// <summary>Bytes of the in-flight array not yet taken.</summary>
    public int InFlight => _end - _start;

    /// <summary>The address of the first in-flight byte not yet taken (the array is pinned: it holds until the completion).</summary>
    public unsafe ulong InFlightAddress => (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sending!)) + (ulong)_start;

    /// <summary>Copies <paramref name="data"/> behind what is gathered; <see cref="WriteBacklog.CheckRoom"/> refuses a backlog past its limit.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        WriteBacklog.CheckRoom(Count, data.Length);
        if (_gathered is null)
        {
            _gathered = pool.Rent(data.Length);
            _gatheredEnd = 0;
        }
        else if (_gathered.Length - _gatheredEnd < data.Length)
        {
            var bigger = pool.Rent((int)Math.Min(Math.Max(2L * _gathered.Length, (long)_gatheredEnd + data.Length), WriteBacklog.MaxSize));
            _gathered.AsSpan(0, _gatheredEnd).CopyTo(bigger);
            pool.Return(_gathered);
            _gathered = bigger;
        }

        data.CopyTo(_gathered.AsSpan(_gatheredEnd));
        _gatheredEnd += data.Length;
    }

    /// <summary>
    /// The gathered bytes from <paramref name="taken"/> on become the in-flight ones (the previous
    /// in-flight array goes back). False if the kernel took them all (the array goes back, nothing is in flight).
    /// </summary>
    public bool Promote(int taken = 0)
    {
        ReturnSending();
        var gathered = _gathered!;
        int end = _gatheredEnd;
        _gathered = null;
        _gatheredEnd = 0;
        if (taken == end)
        {
            pool.Return(gathered);
            return false;
        }

        (_sending, _start, _end) = (gathered, taken, end);
        return true;
    }

    /// <summary>The kernel took <paramref name="bytes"/> of the in-flight ones; true if some are left to send.</summary>
    public bool Advance(int bytes)
    {
        _start += bytes;
        return _start < _end;
    }

    /// <summary>Gives the in-flight array back, unless the kernel may still read it.</summary>
    public void ReturnSending()
    {
        if (_sending is { } sending && !InKernel)
        {
            _sending = null;
            _start = _end = 0;
            pool.Return(sending);
        }
    }

    /// <summary>Drops every byte not yet taken (abort, a fatal error); an array the kernel still holds goes back with its completion.</summary>
    public void Drop()
    {
        if (_gathered is { } gathered)
        {
            _gathered = null;
            _gatheredEnd = 0;
            pool.Return(gathered);
        }

        if (InKernel)
        {
            _start = _end; // its bytes count as dropped from now on
        }
        else
        {
            ReturnSending();
        }
    }
}
