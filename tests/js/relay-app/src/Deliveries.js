// A webhook destination's delivery log, and the destinations list, both Relay connections.
import { graphql } from "react-relay";

export const deliveries = graphql`
  fragment Deliveries_destination on WebhookDestination
  @refetchable(queryName: "DeliveriesPaginationQuery")
  @argumentDefinitions(count: { type: "Int", defaultValue: 25 }, cursor: { type: "String" }) {
    url
    deliveryLog(first: $count, after: $cursor) @connection(key: "Deliveries_deliveryLog") {
      edges { node { eventId status } }
    }
  }
`;

export const page = graphql`
  query DeliveriesPageQuery($ids: [ID!]!) {
    webhooks(first: 10) @connection(key: "DeliveriesPage_webhooks") {
      edges { node { id ...Deliveries_destination } }
    }
    nodes(ids: $ids) { id ... on EndUser { externalId } }
  }
`;
