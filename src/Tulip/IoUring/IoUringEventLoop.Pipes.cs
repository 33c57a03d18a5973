namespace Tulip;

// The io_uring loop's pipes: completion transports (READ/WRITE on the ring) for pipes and FIFOs, through
// the loop's own IPipeTransportFactory, as the proactor registers its own.
public sealed partial class IoUringEventLoop
{
    /// <summary>READ, WRITE and reader-gone POLL_ADD operations the pipe transports submitted: for tests, proof the completion path is the one used.</summary>
    internal long PipeOperationsSubmitted { get; set; }

    /// <summary>Called once the ring has provided buffers (the stream transports are completion ones): pipes become completion transports too.</summary>
    private void RegisterCompletionPipes() => Transports.Register<IPipeTransportFactory>(new IoUringPipeTransportFactory());
}
