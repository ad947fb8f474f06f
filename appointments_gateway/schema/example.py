"""The operation GraphiQL opens with: nested data and pagination, ready to run."""

from __future__ import annotations

__all__ = ["EXAMPLE_QUERY"]

EXAMPLE_QUERY = """# Appointments gateway: one request for a whole calendar screen.
#
# Press Ctrl-Enter (or the play button) to run it, then look at
# extensions.upstream.requests in the result: one page of appointments
# plus one batched lookup per related type, however many rows there are.
# To fetch the next page, set "after" to pageInfo.endCursor.
# The Docs pane describes every type, field and argument.

query Calendar($first: Int = 10, $after: String) {
  appointments(
    first: $first
    after: $after
    orderBy: [{field: STARTS_AT, direction: ASC}]
  ) {
    totalCount
    pageInfo {
      hasNextPage
      endCursor
    }
    edges {
      cursor
      node {
        id
        startsAt
        endsAt
        status
        patient {
          firstName
          lastName
        }
        practitioner {
          displayName
        }
        business {
          businessName
          timeZoneIdentifier
        }
        appointmentType {
          name
          color
          durationInMinutes
        }
      }
    }
  }
}
"""
