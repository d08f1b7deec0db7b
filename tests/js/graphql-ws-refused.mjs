// What the graphql-ws reference client sees when the gateway refuses its key. Argument: a JSON object
// {wsUrl, keys: {name: key or null}}. Prints {name: {code, reason}} from the close event of each attempt.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const config = JSON.parse(process.argv[2]);

function attempt(key) {
  return new Promise((resolve, reject) => {
    const client = createClient({
      url: config.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: key === null ? {} : { Authorization: `Bearer ${key}` },
      retryAttempts: 0, // 4403 is retried by default; once is enough to read why
      on: {
        connected: () => reject(new Error("the gateway accepted the key")),
      },
    });
    client.subscribe(
      { query: "subscription { changes { cursor } }" },
      {
        next: () => reject(new Error("a refused client received data")),
        error: (closed) => {
          client.dispose();
          resolve({ code: closed.code, reason: closed.reason });
        },
        complete: () => reject(new Error("the subscription completed")),
      },
    );
  });
}

const seen = {};
for (const [name, key] of Object.entries(config.keys)) {
  seen[name] = await attempt(key);
}
console.log(JSON.stringify(seen));
process.exit(0);
