// Renders GraphiQL against /graphql on this origin; served as /graphiql/static/init.js.
// The page holds no inline executable script (its CSP is script-src 'self'): the example
// operations come from the inert <script type="application/json"> blocks.
// Queries and mutations go over HTTP; subscriptions over graphql-transport-ws (the
// graphql-ws client, global graphqlWs), whose connection_init carries the Headers pane.
(function () {
  "use strict";
  var example = JSON.parse(document.getElementById("example").textContent);
  var liveBlock = document.getElementById("example-subscription");
  var liveExample = liveBlock ? JSON.parse(liveBlock.textContent) : null;
  var endpoint = new URL("/graphql", window.location.href);
  var fetchOverHttp = GraphiQL.createFetcher({ url: endpoint.href });
  var socketUrl = endpoint.href.replace(/^http/, "ws");
  var clients = {};

  function socketFor(headers) {
    // One connection per set of headers: a key typed into the pane opens a new one.
    var key = JSON.stringify(headers || {});
    if (!clients[key]) {
      clients[key] = graphqlWs.createClient({
        url: socketUrl,
        connectionParams: headers || {},
        lazy: true,
      });
    }
    return clients[key];
  }

  function isSubscription(params, opts) {
    var doc = opts && opts.documentAST;
    if (!doc) {
      return /^\s*subscription\b/m.test(params.query || "");
    }
    return doc.definitions.some(function (d) {
      return (
        d.kind === "OperationDefinition" &&
        d.operation === "subscription" &&
        (!params.operationName || (d.name && d.name.value === params.operationName))
      );
    });
  }

  function fetcher(params, opts) {
    if (!isSubscription(params, opts)) {
      return fetchOverHttp(params, opts);
    }
    var client = socketFor(opts && opts.headers);
    // An observable: GraphiQL shows each result as it comes, and unsubscribes on stop.
    return {
      subscribe: function (sink) {
        var dispose = client.subscribe(params, {
          next: function (value) { sink.next(value); },
          error: function (error) {
            sink.error(error instanceof Error ? error : new Error(
              error && error.code ? "Socket closed: " + error.code + " " + (error.reason || "")
                : JSON.stringify(error)));
          },
          complete: function () { sink.complete(); },
        });
        return { unsubscribe: dispose };
      },
    };
  }

  var tabs = [{ query: example }];
  if (liveExample) {
    tabs.push({ query: liveExample });
  }

  function GatewayGraphiQL() {
    var state = React.useState(example);
    var query = state[0];
    var setQuery = state[1];
    var explorer = GraphiQLPluginExplorer.useExplorerPlugin({ query: query, onEdit: setQuery });
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultTabs: tabs,
      query: query,
      onEditQuery: setQuery,
      // The explorer (and the controlled query) follow the tab shown.
      onTabChange: function (tabState) {
        setQuery(tabState.tabs[tabState.activeTabIndex].query || "");
      },
      plugins: [explorer],
      // An API key typed into the headers pane stays in this tab, not in localStorage.
      shouldPersistHeaders: false,
    });
  }

  ReactDOM.render(React.createElement(GatewayGraphiQL), document.getElementById("graphiql"));
})();
