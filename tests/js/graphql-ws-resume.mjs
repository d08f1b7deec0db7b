// The graphql-ws reference client follows `changes`, loses its connection, and resumes from the last
// cursor it received. Argument: a JSON object {wsUrl, httpUrl, apiKey, connectionId, after, contacts}.
// Prints {first, second}: the changes each session received, in order ({cursor, remoteId, jobTitle}).
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const config = JSON.parse(process.argv[2]);
const CHANGES = `subscription($after: String) {
  changes(after: $after, objects: [CONTACT]) { cursor remoteId node { ... on Contact { jobTitle } } }
}`;
const RETITLE = `mutation($c: ID!, $r: String!, $title: String!) {
  updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: $title}) { contact { jobTitle } }
}`;
const WAIT_MS = 20000;

function client() {
  return createClient({
    url: config.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${config.apiKey}` },
    retryAttempts: 0,
  });
}

async function retitle(remoteId, title) {
  const response = await fetch(`${config.httpUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${config.apiKey}` },
    body: JSON.stringify({ query: RETITLE, variables: { c: config.connectionId, r: remoteId, title } }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`retitle failed: ${JSON.stringify(body.errors)}`);
}

async function next(events) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no change arrived in time")), WAIT_MS);
  });
  try {
    const { value, done } = await Promise.race([events.next(), timeout]);
    if (done) throw new Error("the subscription ended");
    if (value.errors) throw new Error(JSON.stringify(value.errors));
    const change = value.data.changes;
    return { cursor: change.cursor, remoteId: change.remoteId, jobTitle: change.node?.jobTitle ?? null };
  } finally {
    clearTimeout(timer);
  }
}

const [live0, live1, live2, offline0, offline1, resumed] = config.contacts;

// Session one: the change made before it started proves the subscription is in place; then live ones.
const one = client();
const firstEvents = one.iterate({ query: CHANGES, variables: { after: config.after } });
const first = [await next(firstEvents)];
await retitle(live0, "live-0");
await retitle(live1, "live-1");
await retitle(live2, "live-2");
first.push(await next(firstEvents));
// The connection drops with changes still on their way.
one.terminate();

// While disconnected, the log moves on.
await retitle(offline0, "offline-0");
await retitle(offline1, "offline-1");

// Session two resumes after the last cursor it received; the last change is made once it is live.
const two = client();
const secondEvents = two.iterate({ query: CHANGES, variables: { after: first.at(-1).cursor } });
const second = [];
let askedForTheLast = false;
for (;;) {
  const change = await next(secondEvents);
  second.push(change);
  if (change.jobTitle === "after-resume") break;
  if (change.jobTitle === "offline-1" && !askedForTheLast) {
    askedForTheLast = true;
    await retitle(resumed, "after-resume");
  }
}
await secondEvents.return();
await two.dispose();

console.log(JSON.stringify({ first, second }));
process.exit(0);
