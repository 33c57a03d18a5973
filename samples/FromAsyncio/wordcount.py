# The asyncio program of docs/COMING_FROM_ASYNCIO.md; WordCount.cs beside it is its Tulip port, and
# the tests run both and require the same lines (WordCountTests). Python 3.11+:
#   /usr/bin/python3 samples/FromAsyncio/wordcount.py
#
# A word-count service: each client sends its name and lines of text; the server puts every word
# on a bounded queue, three workers count them into a shared table under a lock, and the server
# answers a client once it has half-closed and all its words are counted. Carol forgets to
# half-close: she waits for the answer under a timeout, gives up, half-closes, and then gets it.
import asyncio

TEXTS = {
    "alice": ["the cat sat on the mat", "the dog sat too"],
    "bob": ["a cat and a dog", "and the mat"],
    "carol": ["the end"],
}
PATIENCE = 0.1  # seconds carol waits for an answer that comes only after her EOF


async def main():
    words = asyncio.Queue(maxsize=4)  # bounded: a fast client waits for the workers
    counts = {}
    counting = asyncio.Lock()

    async def worker():
        while (word := await words.get()) is not None:
            async with counting:
                n = counts.get(word, 0)
                await asyncio.sleep(0)  # a round trip to a store: without the lock, counts are lost
                counts[word] = n + 1
            words.task_done()

    async def handle(reader, writer):
        name = (await reader.readline()).decode().strip()
        n = 0
        async for line in reader:  # to EOF
            for word in line.decode().split():
                await words.put(word)
                n += 1
        await words.join()  # every word put so far is counted
        writer.write(f"{name}: {n} words counted\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def client(port, name, lines, half_close):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{name}\n".encode())
        for line in lines:
            writer.write(f"{line}\n".encode())
        if half_close:
            writer.write_eof()
        else:
            try:
                async with asyncio.timeout(PATIENCE):
                    await reader.readline()  # the server answers only after EOF
            except TimeoutError:
                print(f"{name}: no answer within {PATIENCE} s, half-closing")
                writer.write_eof()
        answer = (await reader.readline()).decode().rstrip("\n")
        writer.close()
        await writer.wait_closed()
        return answer

    async with await asyncio.start_server(handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with asyncio.TaskGroup() as workers:
            for _ in range(3):
                workers.create_task(worker())
            async with asyncio.TaskGroup() as clients:
                answers = [clients.create_task(client(port, name, lines, name != "carol"))
                           for name, lines in TEXTS.items()]
            for _ in range(3):
                await words.put(None)  # one stop sign per worker
    for answer in answers:
        print(answer.result())
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:4]
    print("top:", ", ".join(f"{word} {n}" for word, n in top))


asyncio.run(main())
