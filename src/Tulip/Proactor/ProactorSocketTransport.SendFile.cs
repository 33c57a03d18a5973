using System;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

// SendFileAsync's side of the transport: sendfile mode (asyncio's _make_empty_waiter with the pause
// of _sendfile_native), as SelectorSocketTransport has it: reading pauses, Write throws, a WriteEof
// waits for the file, a close or abort meanwhile takes effect when the send ends.
internal sealed partial class ProactorSocketTransport
{
    private ProactorSendFileSession? _sendFile;

    /// <summary>The loop that made the transport.</summary>
    internal ProactorEventLoop Loop => _loop;

    /// <summary>The transport's own socket (not the view <see cref="GetExtraInfo"/> hands out).</summary>
    internal Socket Socket => _socket;

    /// <summary>
    /// Enters sendfile mode: reading pauses, <see cref="Write"/> throws, and the returned session's
    /// <see cref="ProactorSendFileSession.Drained"/> completes once what is buffered has been sent.
    /// </summary>
    /// <exception cref="InvalidOperationException">The transport is closing, or a send is already running.</exception>
    internal ProactorSendFileSession BeginSendFile(CancellationToken taskToken)
    {
        if (_life.IsClosing)
        {
            throw new InvalidOperationException("The transport is closing: SendFileAsync cannot send on it.");
        }

        if (_sendFile is not null)
        {
            throw new InvalidOperationException("SendFileAsync is already running on this transport: await it before starting another.");
        }

        if (_eof)
        {
            throw new InvalidOperationException("Cannot send a file after WriteEof(): the write side is shut down.");
        }

        _sendFile = new ProactorSendFileSession(taskToken)
        {
            Drained = HasPendingWrites ? new Future<VoidResult>(_loop) : null,
            ResumeReading = IsReading,
        };
        _life.HoldConnectionLost();
        PauseReading();
        return _sendFile;
    }

    /// <summary>
    /// Leaves sendfile mode however the send ended: a close or abort that came meanwhile takes
    /// effect now; otherwise reading resumes if it was on, and a <see cref="WriteEof"/> made
    /// meanwhile is carried out.
    /// </summary>
    internal void EndSendFile(ProactorSendFileSession session)
    {
        if (!ReferenceEquals(session, _sendFile))
        {
            return;
        }

        _sendFile = null;
        session.Dispose();
        _life.ReleaseConnectionLost(); // schedules a ConnectionLost that a close or abort meanwhile kept back
        if (_life.IsClosing)
        {
            return;
        }

        if (session.ResumeReading)
        {
            ResumeReading();
        }

        if (_eof && !HasPendingWrites)
        {
            ShutdownWrite();
        }
    }

    /// <summary>The connection is being torn down while a file send runs: stop it.</summary>
    private void InterruptSendFile(Exception? error)
    {
        if (_sendFile is not { } session)
        {
            return;
        }

        session.Interrupt(error);
        if (session.NativeInFlight)
        {
            // The runtime's file send takes no token: only closing the socket stops it. The connection
            // is ending anyway; ConnectionLost follows when the send has come back (EndSendFile).
            _socket.Close(0);
        }
    }
}
