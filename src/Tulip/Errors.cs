using System;

namespace Tulip;

/// <summary>
/// Raised where a future or task was cancelled: by <see cref="Future{T}.Result"/> and <see cref="Future.ResultObject"/>, by
/// <see cref="Future.Exception"/>, and at the <c>await</c> point of a cancelled task.
/// The PEP's <c>CancelledError</c>; an <see cref="OperationCanceledException"/>, so .NET code
/// that catches cancellation the usual way catches it too.
/// </summary>
public class CancelledError : OperationCanceledException
{
    /// <summary>Creates the error with the default message.</summary>
    public CancelledError() : base("The operation was cancelled.") { }

    /// <summary>Creates the error with a message (the one given to <c>Cancel(msg)</c>, if any).</summary>
    public CancelledError(string? message) : base(message ?? "The operation was cancelled.") { }

    /// <summary>Creates the error with a message and an inner exception.</summary>
    public CancelledError(string? message, Exception? innerException)
        : base(message ?? "The operation was cancelled.", innerException) { }
}

/// <summary>
/// Raised when a future is used in a state that does not allow the operation: setting the result
/// of a future that is already done, or reading the result of one that is not. The PEP's
/// <c>InvalidStateError</c>.
/// </summary>
public class InvalidStateError : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public InvalidStateError() : base("The future is in a state that does not allow this operation.") { }

    /// <summary>Creates the error with a message.</summary>
    public InvalidStateError(string message) : base(message) { }

    /// <summary>Creates the error with a message and an inner exception.</summary>
    public InvalidStateError(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// Raised by <see cref="Tasks.WaitFor{T}(Future{T}, double?, System.Threading.CancellationToken)"/> and timeout scopes
/// when the deadline passes. The PEP's <c>TimeoutError</c>; a <see cref="TimeoutException"/>.
/// </summary>
public class TimeoutError : TimeoutException
{
    /// <summary>Creates the error with the default message.</summary>
    public TimeoutError() : base("The operation timed out.") { }

    /// <summary>Creates the error with a message.</summary>
    public TimeoutError(string message) : base(message) { }

    /// <summary>Creates the error with a message and an inner exception.</summary>
    public TimeoutError(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// Raised by <see cref="IEventLoop.SockSendFileAsync"/> and <see cref="IEventLoop.SendFileAsync"/>
/// when called with <c>fallback: false</c> and the zero-copy path (sendfile(2)) cannot be used for
/// this file and socket: the file is not a regular, seekable file, the kernel refuses it, or the
/// platform has no sendfile. asyncio's <c>SendfileNotAvailableError</c>; a
/// <see cref="NotSupportedException"/>, since what is missing is support, not a bad argument.
/// </summary>
/// <remarks>Nothing has been sent when this is raised: retrying with <c>fallback: true</c> sends the file.</remarks>
public class SendfileNotAvailableError : NotSupportedException
{
    /// <summary>Creates the error with the default message.</summary>
    public SendfileNotAvailableError() : base("sendfile(2) cannot be used here: pass fallback: true to send the file with reads and writes.") { }

    /// <summary>Creates the error with a message.</summary>
    public SendfileNotAvailableError(string message) : base(message) { }

    /// <summary>Creates the error with a message and the error that made sendfile(2) unusable.</summary>
    public SendfileNotAvailableError(string message, Exception? innerException) : base(message, innerException) { }
}
