namespace Tulip.Tests.Tls;

/// <summary>
/// A protocol that sits between a real transport and a TLS layer (a <see cref="SslProtocol"/>) and
/// hands the layer a transport of its own (<see cref="TlsTapTransport"/>) that forwards everything,
/// so a test can misbehave beneath TLS: corrupt records, add bytes after close_notify, end the TCP
/// stream without close_notify. The seam any third-party transport uses, which also shows that
/// TLS runs over a transport it has never seen.
/// </summary>
internal sealed class TlsTap(IProtocol inner) : IProtocol
{
    public TlsTapTransport? Transport { get; private set; }

    /// <summary>Bytes on their way from the TLS layer to the wire; the default passes them through.</summary>
    public Func<byte[], byte[]> OnWrite { get; set; } = static b => b;

    /// <summary>Bytes that came off the wire before the TLS layer sees them.</summary>
    public Func<byte[], byte[]> OnRead { get; set; } = static b => b;

    public long BytesWritten { get; set; }

    public void ConnectionMade(IBaseTransport transport)
    {
        Transport = new TlsTapTransport((ITransport)transport, this);
        inner.ConnectionMade(Transport);
    }

    public void DataReceived(ReadOnlySpan<byte> data)
    {
        var bytes = OnRead(data.ToArray());
        if (bytes.Length > 0)
        {
            inner.DataReceived(bytes);
        }
    }

    public bool EofReceived() => inner.EofReceived();

    public void ConnectionLost(Exception? exception) => inner.ConnectionLost(exception);

    public void PauseWriting() => inner.PauseWriting();

    public void ResumeWriting() => inner.ResumeWriting();
}

/// <summary>The transport a <see cref="TlsTap"/> gives the TLS layer: the real one, with the tap's hooks on writes.</summary>
internal sealed class TlsTapTransport(ITransport beneath, TlsTap tap) : ITransport
{
    public ITransport Beneath => beneath;

    public bool IsClosing => beneath.IsClosing;

    public bool IsReading => beneath.IsReading;

    public bool CanWriteEof => beneath.CanWriteEof;

    public object? GetExtraInfo(string name, object? defaultValue = null) => beneath.GetExtraInfo(name, defaultValue);

    public void Close() => beneath.Close();

    public void Abort() => beneath.Abort();

    public void SetProtocol(IBaseProtocol protocol) => throw new NotSupportedException("the tap keeps its protocol");

    public IBaseProtocol GetProtocol() => tap;

    public void PauseReading() => beneath.PauseReading();

    public void ResumeReading() => beneath.ResumeReading();

    public void Write(ReadOnlySpan<byte> data)
    {
        var bytes = tap.OnWrite(data.ToArray());
        tap.BytesWritten += bytes.Length;
        beneath.Write(bytes);
    }

    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        foreach (var chunk in data)
        {
            Write(chunk.Span);
        }
    }

    public void WriteEof() => beneath.WriteEof();

    public int GetWriteBufferSize() => beneath.GetWriteBufferSize();

    public (int Low, int High) GetWriteBufferLimits() => beneath.GetWriteBufferLimits();

    public void SetWriteBufferLimits(int? high = null, int? low = null) => beneath.SetWriteBufferLimits(high, low);
}
