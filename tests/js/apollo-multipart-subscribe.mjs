// One subscription through Apollo Client's HttpLink (multipart subscriptions over HTTP):
// `node apollo-multipart-subscribe.mjs '<json options>'` with url, key, query, variables, take.
// Prints {results, completed, error}.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const { url, key, query, variables, take = Infinity } = JSON.parse(process.argv[2]);
const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new HttpLink({ uri: url, headers: { Authorization: `Bearer ${key}` } }),
});
const results = [];
const outcome = await new Promise((resolve) => {
  const subscription = client.subscribe({ query: gql(query), variables, fetchPolicy: "no-cache" }).subscribe({
    next(result) {
      if (result.error) {
        resolve({ completed: false, error: { message: result.error.message, name: result.error.name,
          errors: result.error.errors ?? null } });
        return;
      }
      results.push({ data: result.data });
      if (results.length >= take) {
        subscription.unsubscribe(); // aborts the request
        resolve({ completed: false, error: null });
      }
    },
    error(err) {
      resolve({ completed: false, error: { message: String(err.message ?? err), name: err.name, errors: err.errors ?? null } });
    },
    complete() {
      resolve({ completed: true, error: null });
    },
  });
});
client.stop();
console.log(JSON.stringify({ results, ...outcome }));
process.exit(0);
