// dotnet run --project samples/FromAsyncio: the "Porting from asyncio" example (docs/PORTING.md).
using Tulip;

Console.WriteLine(EventLoop.Run(() => FromAsyncio.UpperServer.RunAsync("hello", "tulip")));
