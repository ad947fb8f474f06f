"""The operations GraphiQL opens with: a calendar query, and a live subscription."""

from __future__ import annotations

__all__ = ["EXAMPLE_QUERY", "EXAMPLE_SUBSCRIPTION"]

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

#: The second tab GraphiQL opens: live updates over graphql-transport-ws.
EXAMPLE_SUBSCRIPTION = """# Live updates: every appointment change, as it happens.
#
# Press the play button: the result pane stays open and shows each
# appointment created, updated, cancelled, archived or deleted, within a
# poll of the gateway's replica (a few seconds), at no upstream cost.
# Narrow it with the same filter as `appointments`, e.g.
#   filter: {businessId: "1", localDate: "2026-11-24"}
# With GATEWAY_AUTH=forward, put your key in the Headers pane:
#   {"Authorization": "Bearer <your Cliniko API key>"}

subscription LiveCalendar {
  appointmentChanged {
    kind
    appointment {
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
    }
  }
}
"""
