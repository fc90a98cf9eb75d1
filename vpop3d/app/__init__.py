"""Use cases: auth, routing, delivery, mailboxes, queue; they implement vpop3d.ports."""
