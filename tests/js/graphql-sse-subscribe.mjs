// One operation through the graphql-sse client: `node graphql-sse-subscribe.mjs '<json options>'`.
// Options: url, key (sent as Authorization: Bearer), singleConnection, query, variables, operationName, take
// (stop after that many results). Prints {results, completed, error}: completed when the server ended the operation.
import { createClient } from "graphql-sse";

const { url, key, singleConnection = false, query, variables, operationName, take = Infinity } = JSON.parse(
  process.argv[2],
);
const client = createClient({
  url,
  singleConnection,
  retryAttempts: 0,
  headers: key ? { Authorization: `Bearer ${key}` } : {},
});
const results = [];
let completed = false;
let error = null;
try {
  for await (const result of client.iterate({ query, variables, operationName })) {
    results.push(result);
    if (results.length >= take) break; // leaves the stream: the client aborts it
  }
  completed = results.length < take;
} catch (err) {
  const response = err.response;
  error = {
    message: String(err.message ?? err),
    status: response ? response.status : null,
    contentType: response ? response.headers.get("content-type") : null,
    body: response ? await response.json().catch(() => null) : null,
  };
}
client.dispose();
console.log(JSON.stringify({ results, completed, error }));
