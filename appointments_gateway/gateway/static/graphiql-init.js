// Renders GraphiQL against /graphql on this origin; served as /graphiql/static/init.js.
// The page holds no inline executable script (its CSP is script-src 'self'): the example
// operation comes from the inert <script type="application/json" id="example"> block.
(function () {
  "use strict";
  var example = JSON.parse(document.getElementById("example").textContent);
  var fetcher = GraphiQL.createFetcher({ url: new URL("/graphql", window.location.href).href });

  function GatewayGraphiQL() {
    var state = React.useState(example);
    var query = state[0];
    var setQuery = state[1];
    var explorer = GraphiQLPluginExplorer.useExplorerPlugin({ query: query, onEdit: setQuery });
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      query: query,
      onEditQuery: setQuery,
      plugins: [explorer],
      // An API key typed into the headers pane stays in this tab, not in localStorage.
      shouldPersistHeaders: false,
    });
  }

  ReactDOM.render(React.createElement(GatewayGraphiQL), document.getElementById("graphiql"));
})();
