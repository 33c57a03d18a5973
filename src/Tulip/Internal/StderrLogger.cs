using System;
using Microsoft.Extensions.Logging;

namespace Tulip.Internal;

/// <summary>
/// The logger used when no <see cref="ILoggerFactory"/> is given: one line per entry on stderr,
/// with the exception after it. (Microsoft.Extensions.Logging.Console is not a dependency we take
/// for this one use.)
/// </summary>
internal sealed class StderrLoggerFactory : ILoggerFactory
{
    public static readonly StderrLoggerFactory Instance = new();

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new StderrLogger(categoryName);

    public void Dispose()
    {
    }

    private sealed class StderrLogger : ILogger
    {
        private readonly string _category;

        public StderrLogger(string category) => _category = category;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            string text = $"{_category} {logLevel}: {formatter(state, exception)}";
            if (exception is not null)
            {
                text += Environment.NewLine + exception;
            }

            Console.Error.WriteLine(text);
        }
    }
}
