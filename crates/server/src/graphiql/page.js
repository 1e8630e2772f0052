// Starts GraphiQL against this server's /graphql (and /graphql/ws for subscriptions); the key goes into
// the Headers tab.
(function () {
  const url = new URL('/graphql', window.location.href).toString();
  const subscriptionUrl = url.replace(/^http/, 'ws') + '/ws';
  const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultHeaders: '{"Authorization": "Bearer <your key>"}',
      defaultQuery: '{ payments(first: 10) { nodes { paymentId refundableAmount { currency value decimal } } } }',
    }),
  );
})();
