using System.Threading;

namespace Tulip;

/// <summary>
/// Clears the thread's <see cref="SynchronizationContext"/> for the length of a <c>using</c> block.
/// </summary>
/// <remarks>
/// The loop thread runs under the loop's context, and .NET never inlines a <c>Task</c>'s
/// <c>ConfigureAwait(false)</c> continuation where a non-default context is current: it queues it to
/// the thread pool instead (<c>AwaitTaskContinuation.IsValidLocationForInlining</c>). SslStream's
/// handshake and reads are chains of such awaits, so every step completed on the loop thread (bytes
/// fed to the BIO) would hop to the pool and back. Completing them with no context current keeps
/// them inline, on the loop thread, where the bytes arrived.
/// </remarks>
internal readonly ref struct NoSyncContextScope
{
    private readonly SynchronizationContext? _saved;

    public NoSyncContextScope()
    {
        _saved = SynchronizationContext.Current;
        if (_saved is not null)
        {
            SynchronizationContext.SetSynchronizationContext(null);
        }
    }

    public void Dispose()
    {
        if (_saved is not null)
        {
            SynchronizationContext.SetSynchronizationContext(_saved);
        }
    }
}
