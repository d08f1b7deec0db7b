// One linked account with its sync runs, loaded in both directions, refetched through node(id:).
import { graphql } from "react-relay";

export const accountHistory = graphql`
  fragment AccountHistory_account on LinkedAccount
  @refetchable(queryName: "AccountHistoryPaginationQuery")
  @argumentDefinitions(
    first: { type: "Int" }
    after: { type: "String" }
    last: { type: "Int", defaultValue: 10 }
    before: { type: "String" }
  ) {
    provider
    endUser { id externalId }
    runs(first: $first, after: $after, last: $last, before: $before)
      @connection(key: "AccountHistory_runs") {
      edges { node { id status startedAt } }
    }
  }
`;

export const accountList = graphql`
  fragment AccountList_query on Query
  @refetchable(queryName: "AccountListPaginationQuery")
  @argumentDefinitions(count: { type: "Int", defaultValue: 10 }, cursor: { type: "String" }) {
    connections(last: $count, before: $cursor) @connection(key: "AccountList_connections") {
      edges { node { id ...AccountHistory_account } }
    }
  }
`;
