// Load every artifact relay-compiler generated in the directory given and print what a test asserts on:
// per artifact its kind, its operation text (queries) and its connections and refetch plan, as one JSON line.
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const directory = process.argv[2];
const require = createRequire(join(directory, "index.js"));
const artifacts = {};
for (const file of readdirSync(directory).filter((name) => name.endsWith(".graphql.js")).sort()) {
  const artifact = require(join(directory, file));
  const metadata = (artifact.kind === "Request" ? artifact.params.metadata : artifact.metadata) ?? {};
  artifacts[file.replace(/\.graphql\.js$/, "")] = {
    kind: artifact.kind,
    text: artifact.params?.text ?? null,
    connections: metadata.connection ?? [],
    refetch: metadata.refetch
      ? { connection: metadata.refetch.connection ?? null, path: metadata.refetch.fragmentPathInResult }
      : null,
  };
}
console.log(JSON.stringify(artifacts));
