"""post_tracker: publishes due system posts to VK walls and verifies they got there.

``system_posts`` lifecycle (contract statuses)::

    pending_publication ──claim──▶ publishing ──found on the wall──▶ (deleted: verified)
          ▲                          │  │  └──not found within the verify timeout──▶ possible_error
          └──VK 6/9/29, attempts left┘  └──VK refused (or attempts ran out)──▶ error

Delivery semantics, plainly:

* **At most once to VK.** A post is claimed by one atomic ``find_one_and_update``
  (any number of tracker replicas may run) and ``wall.post`` is called once per claim.
  A call whose outcome is unknown (timeout, connection lost, 5xx, VK error 10) is never
  repeated: the post stays ``publishing`` and verification finds it on the wall by
  content, or times it out to ``possible_error`` for a human to check. The same holds
  after a crash between the claim and the record of the answer.
* **Never silently lost.** Every claimed post ends deleted-as-verified, ``error`` or
  ``possible_error``; a post whose ``wall.post`` was refused with proof that nothing
  was posted (6, 9, 29, a refused connection) goes back to ``pending_publication``
  with a back-off, a bounded number of times.
* **Announced.** Each change (published, error, retry, possible_error, verified and
  deleted) is followed by ``ProjectUpdated(reason="system_post")`` on the updates
  exchange, carrying the post's correlation id.

Bookkeeping fields the tracker adds to ``system_posts`` (all optional; the contract
fields ``status``, ``vk_post_id`` and ``error`` keep their meaning):

=================  ===========================================================
``claimed_by``     tracker instance (``host:pid:random``) holding the claim
``claimed_at``     when it was claimed, i.e. handed to VK (verification timeout
                   counts from here); with ``claimed_by`` it fences later writes
``sent_text``      the text sent: ``text`` with ``{{variables}}`` substituted;
                   verification compares the wall against it
``correlation_id`` kept for the post's whole life; on its log lines and messages
``published_at``   when ``wall.post`` returned ``vk_post_id``
``outcome_unknown`` true when the ``wall.post`` outcome was unknown
``attempts``       failed ``wall.post`` attempts so far
``not_before``     a pending post is not claimed before this (back-off)
``last_error``,    the latest failure, kept while the post waits for a retry
``last_error_code``
``error_code``     VK's error code of the final ``error`` (null if none)
``failed_at``      when it became ``error`` or ``possible_error``
=================  ===========================================================

Per-project leases between replicas live in ``post_tracker_leases``
(:mod:`services.post_tracker.leases`).

Modules: :mod:`~.variables`, :mod:`~.matching` and :mod:`~.decisions` are pure;
:mod:`~.store` and :mod:`~.leases` are MongoDB; :mod:`~.publisher` and
:mod:`~.verifier` are the two steps; :mod:`~.tracker` schedules them;
:mod:`~.wakeup` wakes it; :mod:`~.service` is the lifespan.
"""
