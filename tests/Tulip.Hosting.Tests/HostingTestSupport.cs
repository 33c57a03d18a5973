using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tulip.Hosting;

namespace Tulip.Hosting.Tests;

/// <summary>Hosts, clients and probes the hosting tests share.</summary>
internal static class HostingTestSupport
{
    /// <summary>How long any one wait may take: generous, for a loaded 2-core machine. A hang guard, not a timing assertion.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    /// <summary>Every loop kind this machine can make, for [MemberData].</summary>
    public static TheoryData<string> Kinds
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (string name in EventLoopKinds.AvailableNames)
            {
                data.Add(name);
            }

            return data;
        }
    }

    /// <summary>
    /// A host with only what the test gives: AddTulip on <paramref name="kind"/>, a logger that records, and
    /// no console lifetime (so the test process's SIGTERM and Ctrl-C stay its own).
    /// </summary>
    public static IHost BuildHost(string kind, Action<TulipOptions> configure, RecordingLoggerProvider? logs = null,
        TimeSpan? shutdownTimeout = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton<IHostLifetime, NoLifetime>();
        builder.Services.AddLogging(logging =>
        {
            if (logs is not null)
            {
                logging.AddProvider(logs);
            }
        });
        if (shutdownTimeout is { } timeout)
        {
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = timeout);
        }

        builder.Services.AddTulip(options =>
        {
            options.LoopKind = kind;
            configure(options);
        });
        return builder.Build();
    }

    public static TulipLoopService Tulip(this IHost host) => host.Services.GetRequiredService<TulipLoopService>();

    public static EndPoint FirstEndPoint(this IHost host) => host.Tulip().Listeners[0].LocalEndPoints[0];

    public static async Task<Socket> ConnectAsync(EndPoint endPoint, int? receiveBuffer = null)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream,
            endPoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp);
        if (receiveBuffer is { } size)
        {
            socket.ReceiveBufferSize = size; // before connect, so the window advertised fits it
        }

        await socket.ConnectAsync(endPoint).WaitAsync(Patience);
        return socket;
    }

    public static Task SendAsync(Socket socket, string text) =>
        socket.SendAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None).WaitAsync(Patience);

    /// <summary>Reads until a newline (returned without it) or the end (null if nothing came).</summary>
    public static async Task<string?> ReadLineAsync(Socket socket)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            int n = await socket.ReceiveAsync(one, SocketFlags.None).WaitAsync(Patience);
            if (n == 0)
            {
                return line.Length == 0 ? null : line.ToString();
            }

            if (one[0] == '\n')
            {
                return line.ToString();
            }

            line.Append((char)one[0]);
        }
    }

    /// <summary>Reads to the end; true if it was a clean end (FIN), false if the connection was reset.</summary>
    public static async Task<bool> ReadToEndAsync(Socket socket)
    {
        var buffer = new byte[65536];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(Patience) > 0)
            {
            }

            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            return false;
        }
    }

    /// <summary>Whether a connection to <paramref name="endPoint"/> is refused (nothing listens there).</summary>
    public static async Task<bool> IsRefusedAsync(EndPoint endPoint)
    {
        try
        {
            using var socket = await ConnectAsync(endPoint);
            return false;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable
            or SocketError.AddressFamilyNotSupported || endPoint is UnixDomainSocketEndPoint)
        {
            return true;
        }
    }

    /// <summary>
    /// The service's loop thread has ended: StopAsync (or Dispose) joined it, so this holds at once, with no
    /// waiting. (Its OS entry in /proc/self/task can outlive the join for a moment, so the OS list is not asked.)
    /// </summary>
    public static void AssertThreadGone(TulipLoopService service) =>
        Assert.False(service.LoopThreadAlive, $"the thread {service.ThreadName} is still running after the host stopped");

    public static List<string> ThreadNames()
    {
        var names = new List<string>();
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                names.Add(File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n'));
            }
            catch (IOException)
            {
                // the thread ended while listed
            }
        }

        return names;
    }

    /// <summary>A host lifetime that does nothing: the tests start and stop the host themselves.</summary>
    private sealed class NoLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>Records every log line (category, level, message, exception, event id).</summary>
internal sealed class RecordingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message, Exception? Exception, EventId Id)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(RecordingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((category, logLevel, formatter(state, exception), exception, eventId));
    }
}
