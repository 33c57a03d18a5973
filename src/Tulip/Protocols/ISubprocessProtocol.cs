using System;

namespace Tulip;

/// <summary>
/// A protocol for a child process: the PEP's <c>SubprocessProtocol</c>.
/// </summary>
/// <remarks>
/// <para>Call order: <c>ConnectionMade → (PipeDataReceived | PipeConnectionLost)* → ProcessExited → ConnectionLost</c>,
/// all on the loop thread. Each piped fd gets exactly one <see cref="PipeConnectionLost"/>; <see cref="ProcessExited"/>
/// comes once the child has exited and been reaped (it may come before some PipeConnectionLost, since a child's
/// own children can hold its pipes open); <see cref="IBaseProtocol.ConnectionLost"/> comes last, once the child
/// has exited and every pipe has closed, with null.</para>
/// <para><see cref="IBaseProtocol.PauseWriting"/> and <see cref="IBaseProtocol.ResumeWriting"/> follow the stdin pipe's buffer.</para>
/// </remarks>
public interface ISubprocessProtocol : IBaseProtocol
{
    /// <summary>The child wrote <paramref name="data"/> to its stdout (fd 1) or stderr (fd 2). The span is valid only during the call.</summary>
    void PipeDataReceived(int fd, ReadOnlySpan<byte> data);

    /// <summary>The child's pipe <paramref name="fd"/> (0, 1 or 2) closed: null at EOF or after a close, else the error that ended it.</summary>
    void PipeConnectionLost(int fd, Exception? exception);

    /// <summary>The child exited; <see cref="ISubprocessTransport.ReturnCode"/> says how.</summary>
    void ProcessExited();
}

/// <summary>
/// A subprocess protocol with no-op defaults, to override what is needed: asyncio's <c>SubprocessProtocol</c> class.
/// </summary>
public abstract class SubprocessProtocol : ISubprocessProtocol
{
    /// <inheritdoc/>
    public virtual void ConnectionMade(IBaseTransport transport)
    {
    }

    /// <inheritdoc/>
    public virtual void PipeDataReceived(int fd, ReadOnlySpan<byte> data)
    {
    }

    /// <inheritdoc/>
    public virtual void PipeConnectionLost(int fd, Exception? exception)
    {
    }

    /// <inheritdoc/>
    public virtual void ProcessExited()
    {
    }

    /// <inheritdoc/>
    public virtual void ConnectionLost(Exception? exception)
    {
    }

    /// <inheritdoc/>
    public virtual void PauseWriting()
    {
    }

    /// <inheritdoc/>
    public virtual void ResumeWriting()
    {
    }
}
