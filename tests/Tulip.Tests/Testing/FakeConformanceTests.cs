using System.Reflection;
using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Testing;

/// <summary>
/// The fakes are checked against the real interfaces, as Twisted verifies its StringTransport and
/// MemoryReactor: each fake is concrete, every member of every interface (and abstract base) it
/// claims maps to a concrete method, and none of those methods is a NotImplementedException stub.
/// </summary>
public class FakeConformanceTests
{
    public static TheoryData<Type> Fakes => new()
    {
        typeof(TestEventLoop),
        typeof(MemoryEventLoop),
        typeof(MemoryTransport),
        typeof(MemoryServer),
        typeof(RecordingProtocol),
    };

    [Theory]
    [MemberData(nameof(Fakes))]
    public void FakeImplementsEveryMemberItClaims(Type fake)
    {
        Assert.False(fake.IsAbstract, $"{fake.Name} is abstract");
        var missing = new List<string>();
        foreach (var iface in fake.GetInterfaces())
        {
            var map = fake.GetInterfaceMap(iface);
            for (int i = 0; i < map.InterfaceMethods.Length; i++)
            {
                var target = map.TargetMethods[i];
                if (target is null || target.IsAbstract)
                {
                    missing.Add($"{iface.Name}.{map.InterfaceMethods[i].Name}: not implemented");
                }
                else if (IsNotImplementedStub(target))
                {
                    missing.Add($"{iface.Name}.{map.InterfaceMethods[i].Name}: throws NotImplementedException");
                }
            }
        }

        for (var t = fake.BaseType; t is not null && t != typeof(object); t = t.BaseType)
        {
            foreach (var m in t.GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly).Where(m => m.IsAbstract))
            {
                var impl = fake.GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                    .FirstOrDefault(c => c.GetBaseDefinition() == m && !c.IsAbstract);
                if (impl is null)
                {
                    missing.Add($"{t.Name}.{m.Name}: abstract, not overridden");
                }
                else if (IsNotImplementedStub(impl))
                {
                    missing.Add($"{t.Name}.{m.Name}: throws NotImplementedException");
                }
            }
        }

        Assert.True(missing.Count == 0, $"{fake.Name}:\n  " + string.Join("\n  ", missing));
    }

    [Fact]
    public void TheStubDetectorRecognisesAStub()
    {
        var stub = typeof(Stub).GetMethod(nameof(Stub.NotYet))!;
        Assert.True(IsNotImplementedStub(stub));
        Assert.False(IsNotImplementedStub(typeof(MemoryTransport).GetMethod(nameof(MemoryTransport.Close))!));
    }

    [Fact]
    public void EveryTransportMemberWorksInASaneState()
    {
        using var loop = new TestEventLoop();
        var protocol = new RecordingProtocol();
        ITransport t = new MemoryTransport(loop, protocol);
        loop.RunUntilIdle();
        Assert.Null(t.GetExtraInfo("peername"));
        Assert.True(t.IsReading);
        t.PauseReading();
        t.ResumeReading();
        t.Write("a"u8);
        t.WriteLines([new byte[] { 1 }]);
        Assert.Equal(0, t.GetWriteBufferSize());
        t.SetWriteBufferLimits(10, 2);
        Assert.Equal((2, 10), t.GetWriteBufferLimits());
        Assert.True(t.CanWriteEof);
        t.SetProtocol(protocol);
        Assert.Same(protocol, t.GetProtocol());
        t.WriteEof();
        Assert.False(t.IsClosing);
        t.Close();
        Assert.True(t.IsClosing);
        t.Abort();
        loop.RunUntilIdle();
        Assert.True(protocol.IsConnectionLost);
    }

    private static bool IsNotImplementedStub(MethodInfo method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            return false;
        }

        // newobj (0x73) followed by a method token; look for the NotImplementedException constructor.
        for (int i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] != 0x73)
            {
                continue;
            }

            int token = BitConverter.ToInt32(il, i + 1);
            try
            {
                if (method.Module.ResolveMethod(token) is ConstructorInfo ctor && ctor.DeclaringType == typeof(NotImplementedException))
                {
                    return true;
                }
            }
            catch (ArgumentException)
            {
                // Not a token: a byte of an operand that happens to be 0x73.
            }
        }

        return false;
    }

    private static class Stub
    {
        public static void NotYet() => throw new NotImplementedException();
    }
}
