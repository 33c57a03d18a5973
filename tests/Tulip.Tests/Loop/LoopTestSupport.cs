using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Tulip.Tests.Loop;

/// <summary>One log entry captured by <see cref="CapturingLoggerFactory"/>.</summary>
internal sealed record LogEntry(LogLevel Level, string Message, Exception? Exception);

/// <summary>An <see cref="ILoggerFactory"/> that keeps what is logged, so tests can assert on the loop's logging.</summary>
internal sealed class CapturingLoggerFactory : ILoggerFactory
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyList<LogEntry> Entries => _entries.ToArray();

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(CapturingLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue(new LogEntry(logLevel, formatter(state, exception), exception));
    }
}

/// <summary>
/// A loop under test and the checks that it leaves nothing behind (STYLE §12): every call to the
/// exception handler is recorded, and the test must take (and so assert on) the ones it expects;
/// on dispose the loop is closed, and the test fails if an unexpected context arrived or, where the
/// test asked for it, if the count of open fds is not back to where it started.
/// </summary>
internal sealed class LoopHarness : IDisposable
{
    /// <summary>Generous bound for anything that should happen: a test fails after this rather than hangs.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly List<ExceptionContext> _contexts = new();
    private readonly int? _fdsAtStart;
    private readonly Dictionary<int, string>? _fdTargetsAtStart;

    public LoopHarness(Func<ILoggerFactory?, BaseEventLoop> factory, bool recordExceptions = true, bool checkFds = false,
        ILoggerFactory? loggerFactory = null)
    {
        _fdTargetsAtStart = checkFds ? OpenFds() : null;
        _fdsAtStart = checkFds ? OpenFdCount() : null;
        Logs = loggerFactory as CapturingLoggerFactory ?? new CapturingLoggerFactory();
        Loop = factory(loggerFactory ?? Logs);
        if (recordExceptions)
        {
            Loop.SetExceptionHandler((_, context) =>
            {
                lock (_contexts)
                {
                    _contexts.Add(context);
                }
            });
        }
    }

    public BaseEventLoop Loop { get; }

    public CapturingLoggerFactory Logs { get; }

    /// <summary>Takes the exception contexts recorded so far: the test asserts on them, and they no longer fail it.</summary>
    public ExceptionContext[] TakeContexts()
    {
        lock (_contexts)
        {
            var taken = _contexts.ToArray();
            _contexts.Clear();
            return taken;
        }
    }

    /// <summary>Runs the coroutine to completion; stops the loop (and fails) after <see cref="Patience"/>.</summary>
    public T Run<T>(Func<LoopTask<T>> main)
    {
        using var watchdog = Watchdog();
        return Loop.RunUntilComplete(main);
    }

    /// <summary>As <see cref="Run{T}"/> for a coroutine without a result.</summary>
    public void Run(Func<LoopTask> main)
    {
        using var watchdog = Watchdog();
        Loop.RunUntilComplete(main);
    }

    /// <summary>Runs until something calls Stop; fails after <see cref="Patience"/>.</summary>
    public void RunForever()
    {
        bool timedOut = false;
        using (new Timer(_ => { timedOut = true; TryStop(); }, null, Patience, Timeout.InfiniteTimeSpan))
        {
            Loop.RunForever();
        }

        Assert.False(timedOut, $"The loop was still running after {Patience.TotalSeconds} s.");
    }

    /// <summary>Runs exactly one iteration (Stop before RunForever runs one iteration and returns).</summary>
    public void RunOnce()
    {
        Loop.Stop();
        Loop.RunForever();
    }

    public void Dispose()
    {
        if (!Loop.IsRunning)
        {
            Loop.Close();
        }

        Assert.True(Loop.IsClosed);
        var left = TakeContexts();
        Assert.True(left.Length == 0, "Unexpected calls to the exception handler:\n" + string.Join("\n---\n", left.Select(c => c.ToString() + "\n" + c.Exception)));
        if (_fdsAtStart is { } start)
        {
            int now = OpenFdCount();
            Assert.True(start == now, $"fds at start {start}, at the end {now}: {DescribeFdChange(_fdTargetsAtStart!)}");
        }
    }

    public static int OpenFdCount() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>What <paramref name="fd"/> refers to (readlink of /proc/self/fd/N), or null when it is not open.</summary>
    public static string? FdTarget(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The open fds and what each refers to (readlink of /proc/self/fd/N), for saying what a count difference is.</summary>
    public static Dictionary<int, string> OpenFds()
    {
        var fds = new Dictionary<int, string>();
        foreach (var path in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                fds[int.Parse(Path.GetFileName(path))] = new FileInfo(path).LinkTarget ?? "?";
            }
            catch (IOException)
            {
                // Closed while listing (the listing's own fd, among others).
            }
        }

        return fds;
    }

    /// <summary>Says which fds are open now that were not in <paramref name="before"/>, and which have gone.</summary>
    public static string DescribeFdChange(Dictionary<int, string> before)
    {
        var now = OpenFds();
        var added = now.Where(kv => !before.TryGetValue(kv.Key, out var t) || t != kv.Value).Select(kv => $"+{kv.Key}:{kv.Value}");
        var gone = before.Where(kv => !now.TryGetValue(kv.Key, out var t) || t != kv.Value).Select(kv => $"-{kv.Key}:{kv.Value}");
        return string.Join(", ", added.Concat(gone));
    }

    private Timer Watchdog() => new(_ => TryStop(), null, Patience, Timeout.InfiniteTimeSpan);

    private void TryStop()
    {
        try
        {
            Loop.CallSoonThreadSafe(Loop.Stop);
        }
        catch (InvalidOperationException)
        {
            // Closed already: nothing to stop.
        }
    }
}
