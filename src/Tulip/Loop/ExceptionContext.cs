using System;
using System.Collections.Generic;
using System.Text;

namespace Tulip;

/// <summary>
/// What the loop knows about an error it could not give to anyone else: the PEP's exception
/// handler context dictionary, as a type. Passed to the handler set with
/// <see cref="IEventLoop.SetExceptionHandler"/>.
/// </summary>
public sealed class ExceptionContext
{
    /// <summary>Creates a context with the required message.</summary>
    public ExceptionContext(string message) => Message = message ?? throw new ArgumentNullException(nameof(message));

    /// <summary>What happened, in words.</summary>
    public string Message { get; }

    /// <summary>The exception, if there was one.</summary>
    public Exception? Exception { get; init; }

    /// <summary>The future or task concerned, if any.</summary>
    public Future? Future { get; init; }

    /// <summary>The callback handle concerned, if any.</summary>
    public Handle? Handle { get; init; }

    /// <summary>The protocol concerned, if any.</summary>
    public object? Protocol { get; init; }

    /// <summary>The transport concerned, if any.</summary>
    public object? Transport { get; init; }

    /// <summary>The socket concerned, if any.</summary>
    public object? Socket { get; init; }

    /// <summary>Anything else worth reporting, by name.</summary>
    public IReadOnlyDictionary<string, object?>? Extra { get; init; }

    /// <summary>Formats the context as the default handler logs it.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(Message);
        if (Future is not null) sb.Append("\n  future: ").Append(Future);
        if (Handle is not null) sb.Append("\n  handle: ").Append(Handle);
        if (Protocol is not null) sb.Append("\n  protocol: ").Append(Protocol);
        if (Transport is not null) sb.Append("\n  transport: ").Append(Transport);
        if (Socket is not null) sb.Append("\n  socket: ").Append(Socket);
        if (Extra is not null)
        {
            foreach (var kv in Extra)
            {
                sb.Append("\n  ").Append(kv.Key).Append(": ").Append(kv.Value);
            }
        }

        if (Handle?.SourceTraceback is { } created)
        {
            sb.Append("\n  handle created at:\n").Append(created);
        }

        if (Future?.SourceTraceback is { } futureCreated)
        {
            sb.Append("\n  future created at:\n").Append(futureCreated);
        }

        return sb.ToString();
    }
}
