using System;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tulip.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary><c>services.AddTulip(...)</c>: Tulip's event loop as a hosted service (Tulip.Hosting).</summary>
public static class TulipServiceCollectionExtensions
{
    /// <summary>
    /// Runs a Tulip event loop on a dedicated thread while the host runs, serving the endpoints
    /// <paramref name="configure"/> declares, and shuts it down gracefully when the host stops.
    /// </summary>
    /// <remarks>
    /// Calling it again adds to the same options and the same loop. The service is registered as
    /// <see cref="IHostedService"/> and as <see cref="TulipLoopService"/> (for its loop and listeners).
    /// <code>
    /// builder.Services.AddTulip(tulip =>
    ///     tulip.ListenTcp("127.0.0.1", 7000).UseStreams(async (reader, writer) =>
    ///     {
    ///         while (await reader.ReadLineAsync() is { Length: > 0 } line) { writer.Write(line); await writer.DrainAsync(); }
    ///         writer.Close();
    ///     }));
    /// </code>
    /// </remarks>
    /// <param name="services">The host's services.</param>
    /// <param name="configure">Declares the endpoints and sets the options; null: the loop runs with no endpoint.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IServiceCollection AddTulip(this IServiceCollection services, Action<TulipOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton(static sp => new TulipLoopService(
            sp.GetRequiredService<IOptions<TulipOptions>>(),
            sp.GetService<ILoggerFactory>(),
            sp,
            sp.GetService<IHostApplicationLifetime>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, TulipLoopService>(
            static sp => sp.GetRequiredService<TulipLoopService>()));
        return services;
    }
}
