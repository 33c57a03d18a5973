using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Tulip.Tests.Streams;

namespace Tulip.Tests.Diagnostics;

/// <summary>
/// The libraries' log lines (src/Tulip/Diagnostics/Log.cs, src/Tulip.Hosting/Diagnostics/Log.cs) carry
/// stable, unique event ids and names, each library in its own range, and docs/LOGGING.md's tables list
/// each with its id, name and message; a line logged through a loop carries its id.
/// </summary>
public sealed class LogEventTests
{
    public static TheoryData<string> Libraries => ["Tulip", "Tulip.Hosting"];

    /// <summary>A library's Log class and the range of its event ids.</summary>
    private static (Type Log, int FirstId, int LastId, int AtLeast) LogOf(string library) => library switch
    {
        "Tulip" => (typeof(BaseEventLoop).Assembly.GetType("Tulip.Diagnostics.Log", throwOnError: true)!, 1000, 1399, 15),
        "Tulip.Hosting" => (typeof(Tulip.Hosting.TulipOptions).Assembly.GetType("Tulip.Hosting.Diagnostics.Log", throwOnError: true)!, 2000, 2099, 10),
        _ => throw new ArgumentOutOfRangeException(nameof(library), library, "not a library that logs"),
    };

    private static List<(MethodInfo Method, LoggerMessageAttribute Attribute)> Events(Type log) =>
        [.. log.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Select(m => (m, m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(e => e.Item2 is not null)
            .Select(e => (e.m, e.Item2!))];

    [Theory]
    [MemberData(nameof(Libraries))]
    public void EveryLogLine_HasAUniqueIdAndName_InItsRange(string library)
    {
        var (log, first, last, atLeast) = LogOf(library);
        var events = Events(log);
        Assert.True(events.Count >= atLeast, $"only {events.Count} [LoggerMessage] methods found on {log}");
        Assert.Equal(events.Count, events.Select(e => e.Attribute.EventId).Distinct().Count());
        Assert.Equal(events.Count, events.Select(e => e.Attribute.EventName).Distinct().Count());
        foreach (var (method, attribute) in events)
        {
            Assert.InRange(attribute.EventId, first, last);
            Assert.Equal(method.Name, attribute.EventName);
        }
    }

    [Theory]
    [MemberData(nameof(Libraries))]
    public void TheDocsTableListsEveryLogLine_WithItsIdNameAndMessage(string library)
    {
        var (log, first, last, _) = LogOf(library);
        string[] rows = File.ReadAllLines(FromAsyncioGuideTests.RepositoryFile("docs/LOGGING.md"))
            .Where(l => l.StartsWith("| ", StringComparison.Ordinal) && l.Length > 2 && char.IsAsciiDigit(l[2]))
            .Where(l => int.Parse(l.AsSpan(2, l.IndexOf(' ', 2) - 2), System.Globalization.CultureInfo.InvariantCulture) is var id && id >= first && id <= last)
            .ToArray();
        var events = Events(log);
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
