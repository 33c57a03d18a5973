using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Tulip.Tests.Streams;

namespace Tulip.Tests.Diagnostics;

/// <summary>
/// The library's log lines (src/Tulip/Diagnostics/Log.cs) carry stable, unique event ids and names, and
/// docs/LOGGING.md's table lists each with its id, name and message; a line logged through a loop
/// carries its id.
/// </summary>
public sealed class LogEventTests
{
    private static readonly Type s_log = typeof(BaseEventLoop).Assembly.GetType("Tulip.Diagnostics.Log", throwOnError: true)!;

    private static List<(MethodInfo Method, LoggerMessageAttribute Attribute)> Events() =>
        [.. s_log.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Select(m => (m, m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(e => e.Item2 is not null)
            .Select(e => (e.m, e.Item2!))];

    [Fact]
    public void EveryLogLine_HasAUniqueIdAndName_InItsRange()
    {
        var events = Events();
        Assert.True(events.Count >= 15, $"only {events.Count} [LoggerMessage] methods found on {s_log}");
        Assert.Equal(events.Count, events.Select(e => e.Attribute.EventId).Distinct().Count());
        Assert.Equal(events.Count, events.Select(e => e.Attribute.EventName).Distinct().Count());
        foreach (var (method, attribute) in events)
        {
            Assert.InRange(attribute.EventId, 1000, 1399);
            Assert.Equal(method.Name, attribute.EventName);
        }
    }

    [Fact]
    public void TheDocsTableListsEveryLogLine_WithItsIdNameAndMessage()
    {
        string[] rows = File.ReadAllLines(FromAsyncioGuideTests.RepositoryFile("docs/LOGGING.md"))
            .Where(l => l.StartsWith("| 1", StringComparison.Ordinal)).ToArray();
        var events = Events();
        Assert.Equal(events.Count, rows.Length);
        foreach (var (_, attribute) in events)
        {
            string? row = rows.SingleOrDefault(r => r.StartsWith($"| {attribute.EventId} | `{attribute.EventName}` |", StringComparison.Ordinal));
            Assert.True(row is not null, $"docs/LOGGING.md has no row for {attribute.EventId} {attribute.EventName}");
            Assert.Contains($"| {attribute.Message} |", row, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TheDefaultExceptionHandler_LogsUnhandledLoopError_WithItsEventId()
    {
        var logs = new EventRecorder();
        using var loop = LoopKinds.Epoll.Create(logs);
        var error = new InvalidOperationException("boom");
        loop.DefaultExceptionHandler(new ExceptionContext("a callback failed") { Exception = error });
        var (level, id, message, exception) = Assert.Single(logs.Entries);
        Assert.Equal(LogLevel.Error, level);
        Assert.Equal(new EventId(1003, "UnhandledLoopError"), id);
        Assert.Contains("a callback failed", message, StringComparison.Ordinal);
        Assert.Same(error, exception);
    }

    private sealed class EventRecorder : ILoggerFactory, ILogger
    {
        public ConcurrentQueue<(LogLevel Level, EventId Id, string Message, Exception? Exception)> Entries { get; } = new();

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Enqueue((logLevel, eventId, formatter(state, exception), exception));

        public void Dispose()
        {
        }
    }
}
