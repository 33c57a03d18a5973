using System;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>
/// Write-side flow control for a transport: asyncio's <c>_FlowControlMixin</c>. The transport owns
/// one, reports its write-buffer size at the two moments that matter, and this calls the protocol's
/// <see cref="IBaseProtocol.PauseWriting"/> and <see cref="IBaseProtocol.ResumeWriting"/> exactly
/// when the PEP says.
/// </summary>
/// <remarks>
/// <para>
/// The piece every transport with a write buffer uses, the library's and third-party ones alike:
/// call <see cref="MaybePause"/> after data was added to the buffer, and <see cref="MaybeResume"/>
/// after some was sent. The protocol is paused when the buffer grows above the high-water mark and
/// resumed once it drains to the low-water mark or below; never paused twice in a row, never resumed
/// without a pause. An exception thrown by either protocol call is reported to the loop's exception
/// handler (with asyncio's messages, the transport and the protocol) and does not stop the transport.
/// </para>
/// <para>
/// The marks default to 64 KiB and a quarter of it; <see cref="SetLimits"/> validates and sets them as
/// asyncio's <c>set_write_buffer_limits</c>. A transport's <see cref="IWriteTransport.SetWriteBufferLimits"/>
/// and <see cref="IWriteTransport.GetWriteBufferLimits"/> forward here.
/// </para>
/// <para>
/// The checks are two field compares and allocate nothing; the protocol is asked of the transport
/// (<see cref="IBaseTransport.GetProtocol"/>) only when it is actually paused or resumed, so a
/// protocol replaced with <see cref="IBaseTransport.SetProtocol"/> is the one called.
/// Like the transport that owns it, an instance belongs to the loop thread.
/// </para>
/// </remarks>
public sealed class WriteFlowControl
{
    /// <summary>asyncio's default high-water mark: 64 KiB. The low-water mark defaults to a quarter of the high one.</summary>
    public const int DefaultHighWater = 64 * 1024;

    private readonly IEventLoop _loop;
    private readonly IBaseTransport _transport;
    private int _high = DefaultHighWater;
    private int _low = DefaultHighWater / 4;
    private bool _paused;

    /// <summary>Creates the flow control of <paramref name="transport"/>, with the default marks.</summary>
    /// <param name="loop">The loop whose exception handler hears of a protocol call that threw.</param>
    /// <param name="transport">The transport that owns this; its current protocol is the one paused and resumed.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loop"/> or <paramref name="transport"/> is null.</exception>
    public WriteFlowControl(IEventLoop loop, IBaseTransport transport)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(transport);
        _loop = loop;
        _transport = transport;
    }

    /// <summary>True between a <see cref="IBaseProtocol.PauseWriting"/> call and the <see cref="IBaseProtocol.ResumeWriting"/> that follows it.</summary>
    public bool IsPaused => _paused;

    /// <summary>The marks, as <see cref="IWriteTransport.GetWriteBufferLimits"/> returns them.</summary>
    public (int Low, int High) Limits => (_low, _high);

    /// <summary>
    /// Sets the marks as asyncio's <c>set_write_buffer_limits</c>: without <paramref name="high"/> it is
    /// four times <paramref name="low"/>, or <see cref="DefaultHighWater"/> when neither is given; without
    /// <paramref name="low"/> it is a quarter of the high mark. Then pauses the protocol if
    /// <paramref name="bufferSize"/> is above the new high mark.
    /// </summary>
    /// <param name="high">The high-water mark in bytes, or null.</param>
    /// <param name="low">The low-water mark in bytes, or null.</param>
    /// <param name="bufferSize">The transport's write-buffer size now.</param>
    /// <exception cref="ArgumentOutOfRangeException">The marks do not satisfy 0 &lt;= low &lt;= high; nothing is changed.</exception>
    public void SetLimits(int? high, int? low, int bufferSize)
    {
        int h = high ?? (low is { } l ? 4 * l : DefaultHighWater);
        int lo = low ?? h / 4;
        if (h < 0 || lo < 0 || lo > h)
        {
            throw new ArgumentOutOfRangeException(high is null ? nameof(low) : nameof(high),
                $"The marks must satisfy 0 <= low <= high; got high={h}, low={lo}.");
        }

        _high = h;
        _low = lo;
        MaybePause(bufferSize);
    }

    /// <summary>Call after adding to the write buffer: pauses the protocol if <paramref name="bufferSize"/> is above the high-water mark and it is not paused yet.</summary>
    /// <param name="bufferSize">The transport's write-buffer size now.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MaybePause(int bufferSize)
    {
        if (!_paused && bufferSize > _high)
        {
            Pause();
        }
    }

    /// <summary>Call after sending from the write buffer: resumes the protocol if it is paused and <paramref name="bufferSize"/> is at or below the low-water mark.</summary>
    /// <param name="bufferSize">The transport's write-buffer size now.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MaybeResume(int bufferSize)
    {
        if (_paused && bufferSize <= _low)
        {
            Resume();
        }
    }

    private void Pause()
    {
        _paused = true;
        var protocol = _transport.GetProtocol();
        try
        {
            protocol.PauseWriting();
        }
        catch (Exception ex)
        {
            _loop.CallExceptionHandler(new ExceptionContext("protocol.PauseWriting() failed") { Exception = ex, Transport = _transport, Protocol = protocol });
        }
    }

    private void Resume()
    {
        _paused = false;
        var protocol = _transport.GetProtocol();
        try
        {
            protocol.ResumeWriting();
        }
        catch (Exception ex)
        {
            _loop.CallExceptionHandler(new ExceptionContext("protocol.ResumeWriting() failed") { Exception = ex, Transport = _transport, Protocol = protocol });
        }
    }
}
