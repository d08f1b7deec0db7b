// Apollo Client with its persisted-query link against the gateway.
// Usage: node apollo-apq.mjs <graphql url> <api key> <mode>
//   apq       run the same query twice; report what each request carried and what came back
//   manifest  print {sha256: document} for the query, exactly as this client sends it (for `xkit documents push`)
//   trusted   run the registered query, then one that is not registered
// Prints one JSON line.
import { createHash } from "node:crypto";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { print } from "@apollo/client/utilities";
import { Observable } from "rxjs";

const [url, apiKey, mode] = process.argv.slice(2);

const KEYS = gql`
  query Keys {
    apiKeys {
      name
    }
  }
`;
const URIS = gql`
  query Uris {
    redirectUris
  }
`;

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

// Every request as it left: its method, whether it carried the document and the hash, and its status.
const sent = [];
async function recordingFetch(input, init = {}) {
  const method = init.method ?? "GET";
  const target = new URL(typeof input === "string" ? input : input.url);
  let body = {};
  if (method === "POST") {
    body = JSON.parse(init.body);
  } else {
    body = Object.fromEntries(target.searchParams);
    if (body.extensions) body.extensions = JSON.parse(body.extensions);
  }
  const response = await fetch(input, init);
  sent.push({
    method,
    query: typeof body.query === "string" && body.query.length > 0,
    hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
  });
  return response;
}

function client(terminal) {
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.from([createPersistedQueryLink({ sha256 }), terminal]),
  });
}

const http = new HttpLink({ uri: url, headers: { Authorization: `Bearer ${apiKey}` }, fetch: recordingFetch });

async function run(apollo, query) {
  const before = sent.length;
  const result = await apollo.query({ query, fetchPolicy: "no-cache", errorPolicy: "all" });
  return {
    data: result.data ?? null,
    codes: (result.error?.errors ?? []).map((e) => e.extensions?.code ?? null),
    requests: sent.slice(before),
  };
}

async function manifest() {
  // The document as the persisted-query link hashes it: after the cache's transforms (__typename added).
  const documents = {};
  const capture = new ApolloLink((operation) => {
    const text = print(operation.query);
    documents[sha256(text)] = text;
    return new Observable((observer) => {
      observer.next({ data: { apiKeys: [] } });
      observer.complete();
    });
  });
  await client(capture).query({ query: KEYS, fetchPolicy: "no-cache" });
  return documents;
}

let verdict;
if (mode === "apq") {
  const apollo = client(http);
  verdict = { first: await run(apollo, KEYS), second: await run(apollo, KEYS) };
} else if (mode === "manifest") {
  verdict = await manifest();
} else if (mode === "trusted") {
  const apollo = client(http);
  verdict = { registered: await run(apollo, KEYS), unregistered: await run(apollo, URIS) };
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify(verdict));
