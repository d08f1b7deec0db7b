// GraphiQL as the gateway serves it (gateway/ide.py): the header editor prefilled for the secret key, the
// editors' state (the key included) in this tab's sessionStorage only, and the address kept shareable:
// /graphql?query=…&variables=…&operationName=… opens the page with those filled in. Headers never go in it.
(function () {
  "use strict";

  // GraphiQL's dialogs add a <style> element; under the page's Content-Security-Policy it needs this
  // response's nonce, which GraphiQL's bundle reads from this global.
  window.__webpack_nonce__ = document.currentScript.nonce;

  const KEY_PLACEHOLDER = "<your secret key>";
  const HEADERS_TEMPLATE = JSON.stringify({ Authorization: "Bearer " + KEY_PLACEHOLDER }, null, 2);
  // Where GraphiQL keeps the header editor's text in the storage it is given.
  const STORED_HEADERS = "graphiql:headers";
  const SHARED_FIELDS = ["query", "variables", "operationName"];
  const FIRST_QUERY =
    "# Put your secret API key in Headers (below), then run this with Ctrl-Enter or the play button.\n" +
    "{\n  providers {\n    name\n    streams\n  }\n}\n";

  const endpoint = window.location.pathname;
  const hint = document.getElementById("xkit-key-hint");
  const hintText = hint.innerHTML;
  const shared = new URLSearchParams(window.location.search);
  const link = Object.fromEntries(SHARED_FIELDS.map((field) => [field, shared.get(field)]));
  // What the address said when the page opened: given to GraphiQL once, never changed (a changed prop would
  // replace what is being typed).
  const opened = Object.fromEntries(SHARED_FIELDS.map((field) => [field, link[field] ?? undefined]));
  if (opened.operationName !== undefined && !/^[_A-Za-z][_0-9A-Za-z]*$/.test(opened.operationName)) {
    opened.operationName = undefined;
  }

  // The header editor's text as last typed: used when GraphiQL asks for the schema before its header
  // editor exists (right after the page opens).
  let headerText = window.sessionStorage.getItem(STORED_HEADERS) || HEADERS_TEMPLATE;
  let schemaLoaded = false;
  let reloadPending = false;

  function defines(graphql, operationName) {
    return new RegExp("\\b(query|mutation|subscription)\\s+" + operationName + "\\b").test(graphql);
  }

  // The shared link's operation name chooses among the operations of its document while the document still
  // defines it; after that GraphiQL chooses again.
  function linkOperationApplies(graphql) {
    if (opened.operationName === undefined || defines(graphql, opened.operationName)) {
      return true;
    }
    opened.operationName = undefined;
    render();
    return false;
  }

  function parsedHeaders(text) {
    try {
      const value = JSON.parse(text || "{}");
      return value && typeof value === "object" && !Array.isArray(value) ? value : {};
    } catch {
      return {};
    }
  }

  function authorizationOf(headers) {
    const name = Object.keys(headers).find((key) => key.toLowerCase() === "authorization");
    return name === undefined ? null : String(headers[name]);
  }

  function showHint(alert, message) {
    hint.classList.toggle("xkit-key-hint--alert", alert);
    if (message === null) {
      hint.innerHTML = hintText;
    } else {
      hint.textContent = message;
    }
  }

  function askForKey() {
    const message =
      "No API key yet: in Headers (under the query) replace " + KEY_PLACEHOLDER + " with your secret API key, " +
      "then run the query.";
    showHint(true, message);
    return { errors: [{ message, extensions: { code: "UNAUTHENTICATED" } }] };
  }

  async function send(params, options) {
    // GraphiQL hears of an edit a moment late, so a run right after one may still carry the link's name.
    const linkNamed = opened.operationName !== undefined && params.operationName === opened.operationName;
    if (linkNamed && !linkOperationApplies(params.query)) {
      params = { ...params, operationName: undefined };
    }
    const headers = (options && options.headers) || parsedHeaders(headerText);
    const authorization = authorizationOf(headers);
    // The template's placeholder is not a key: sending it would only count as a failed key for this address.
    if (authorization !== null && authorization.includes(KEY_PLACEHOLDER)) {
      return askForKey();
    }
    const request = new Headers(headers);
    request.set("Content-Type", "application/json");
    request.set("Accept", "application/graphql-response+json, application/json");
    const response = await fetch(endpoint, {
      method: "POST",
      headers: request,
      body: JSON.stringify(params),
      credentials: "omit",
      cache: "no-store",
    });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const said = body && body.errors && body.errors[0] ? body.errors[0].message : response.statusText;
    if (response.status === 401) {
      showHint(
        true,
        "The gateway answered 401 (" + said + "). Put your secret API key in Headers (under the query) as " +
          '{"Authorization": "Bearer ' + KEY_PLACEHOLDER + '"}.',
      );
    } else if (response.status === 429) {
      showHint(true, "The gateway answered 429 (" + said + ").");
    } else {
      showHint(false, null);
      if (!schemaLoaded && !reloadPending && params.operationName !== "IntrospectionQuery") {
        // The key was accepted: fetch the schema again so completion and the docs work.
        reloadPending = true;
        window.setTimeout(reloadSchema, 0);
      }
    }
    return body;
  }

  function keepInAddress(field, value) {
    link[field] = value || null;
    const params = new URLSearchParams();
    for (const name of SHARED_FIELDS) {
      if (link[name]) {
        params.set(name, link[name]);
      }
    }
    const search = params.toString();
    window.history.replaceState(null, "", endpoint + (search ? "?" + search : ""));
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  let fetcher = null;

  // A new fetcher makes GraphiQL ask for the schema again, with the headers now in its editor.
  function reloadSchema() {
    reloadPending = false;
    fetcher = (params, options) => send(params, options);
    render();
  }

  function queryEdited(value) {
    keepInAddress("query", value);
    linkOperationApplies(value);
  }

  function operationChosen(value) {
    if (opened.operationName === undefined) {
      keepInAddress("operationName", value);
    }
  }

  function render() {
    root.render(
      React.createElement(GraphiQL, {
        fetcher,
        storage: window.sessionStorage,
        shouldPersistHeaders: true,
        showPersistHeadersSettings: false,
        defaultHeaders: HEADERS_TEMPLATE,
        defaultQuery: FIRST_QUERY,
        defaultEditorToolsVisibility: "headers",
        isHeadersEditorEnabled: true,
        query: opened.query,
        variables: opened.variables,
        operationName: opened.operationName,
        onEditQuery: queryEdited,
        onEditVariables: (value) => keepInAddress("variables", value),
        onEditOperationName: operationChosen,
        onEditHeaders: (value) => {
          headerText = value;
        },
        onSchemaChange: () => {
          schemaLoaded = true;
        },
      }),
    );
  }

  reloadSchema();
})();
