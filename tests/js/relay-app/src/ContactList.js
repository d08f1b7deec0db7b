// A list of contacts that loads more as the user scrolls down: forward pagination.
import { graphql } from "react-relay";

export const contactList = graphql`
  fragment ContactList_query on Query
  @refetchable(queryName: "ContactListPaginationQuery")
  @argumentDefinitions(
    count: { type: "Int", defaultValue: 20 }
    cursor: { type: "String" }
    filter: { type: "ContactFilter" }
  ) {
    contacts(first: $count, after: $cursor, filter: $filter, orderBy: UPDATED_AT_DESC)
      @connection(key: "ContactList_contacts", filters: ["filter"]) {
      edges {
        node {
          id
          email
          connection { id provider }
        }
      }
    }
  }
`;
