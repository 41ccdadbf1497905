"""post_tracker: publishes due system posts to VK walls and verifies they got there.

``system_posts`` lifecycle (contract statuses)::

    pending_publication ──claim──▶ publishing ──found on the wall──▶ (deleted: verified)
      │    ▲                          │ │ ├──outcome unknown, not on the wall──▶ re-sent (same guid)
      │    └──VK 6/9 (<10 in a row),──┘ │ └──not found within the verify timeout──▶ possible_error
      │       29 with budget left       └──VK refused, or a bound ran out──▶ error
      └──unusable document or project, unknown variable (nothing sent)──▶ error

Every path and its outcome (the same table is in ARCHITECTURE.md):

=====================================================  ==========================================
what happened                                          outcome (``status``: ``error`` text)
=====================================================  ==========================================
``wall.post`` answered an id; the wall shows it        **verified**: deleted (way 1, by id)
outcome unknown (timeout, reset, 5xx, VK 10); the      **verified**: deleted (way 2, by text and
wall shows it since the claim                          images)
outcome unknown; a look at the wall (read since the    **re-sent with the same guid** (VK answers
claim) does not show it                                the same post id if it had posted), at most
                                                       ``TRACKER_GUID_MAX_RESENDS`` times within
                                                       ``TRACKER_GUID_RESEND_WINDOW_SECONDS`` of
                                                       the first send and within the budget
VK 6 (rate), 9 (flood), refused connection: nothing    back to ``pending_publication`` after a
posted                                                 back-off, no attempt spent, ``refusals`` + 1
10 tries refused in a row (``max_refusals``; the       ``error``: ``gave up after 10 refused
back-off, 10 s doubling to 300 s: ~25 min)             tries: VK error 6 …``
VK 29 (daily quota): nothing posted                    back to ``pending_publication`` after a
                                                       30-min back-off, while the budget lasts
the attempt budget (``TRACKER_PUBLISH_ATTEMPTS``,      ``error``: ``gave up after N attempts: VK
default 5, client retries included) ran out            error 29 …``
any other VK error (5, 15, 100, 214, …)                ``error``: ``VK error 214 in wall.post: …``
document unusable (no/null ``project_id``, a           ``error``: ``publication_date: expected a
``publication_date`` that is not a date, a field of    date, got string`` (field and type, never
the wrong type)                                        the value); nothing sent
project missing or unusable                            ``error``: ``project not found`` /
                                                       ``project p1: vk_group_id: missing``
text names an unknown variable                         ``error``: ``unknown variable(s): price``;
                                                       nothing sent
not found on a readable wall within                    ``possible_error``: ``not found on the wall
``TRACKER_VERIFY_TIMEOUT_SECONDS`` of the claim        within 300 s``
the wall could not be read (token revoked, VK down)    ``possible_error``: ``not verified: wall
when the verify timeout passed                         unreadable: VK error 5 in wall.get: …``
a ``publishing`` document that cannot be read          ``possible_error``: ``not verified:
                                                       claimed_at: expected a date, got string``
a ``status`` that is not one of the four               left exactly as it is
=====================================================  ==========================================

Delivery semantics, plainly:

* **Never twice.** A post is claimed by one atomic ``find_one_and_update`` (any number
  of tracker replicas may run). Every ``wall.post`` of a publication carries the same
  ``guid`` (a hash of the post's id, text and attachments): VK's key "to avoid
  duplication of the same post", so a re-send after an unknown outcome is answered with
  the post VK already made. A post claimed by a tracker that crashed before recording
  the answer has no recorded unknown outcome and is never re-sent: verification finds
  it on the wall or times it out to ``possible_error`` for a human to check.
* **One budget.** The VK client's own retries, the tracker's retries after a back-off
  and the guid re-sends all spend from one budget per publication
  (``TRACKER_PUBLISH_ATTEMPTS``, counted in ``attempts``), never their product. It
  bounds the duplicate risk of calls that may have posted; calls VK refused before
  acting (6, 9, refused connection) spend none of it — several processes sharing a
  token's rate limit (a refresher and a tracker) meet error 6 now and then — and are
  bounded on their own (10 tries refused in a row, ``refusals``).
* **Never silently lost, never stuck.** Every claimed post ends deleted-as-verified,
  ``error`` or ``possible_error``, each with its reason. A document the tracker cannot
  use is set to ``error`` once, naming the field and the type found
  (:mod:`shared.documents` reads ``projects`` and ``system_posts`` tolerantly:
  integral doubles, int64, ids of any BSON type as they are, VK's comma string of
  attachments, naive dates as UTC) and the project's other posts go on.
* **Announced.** Each change (claimed, published, error, retry, possible_error,
  verified and deleted) is followed by ``ProjectUpdated(reason="system_post")`` on the
  updates exchange, carrying the post's correlation id; the claim's announcement lets
  the dashboard show "publishing" at once.

Bookkeeping fields the tracker adds to ``system_posts`` (all optional; the contract
fields ``status``, ``vk_post_id`` and ``error`` keep their meaning):

=================  ===========================================================
``claimed_by``     tracker instance (``host:pid:random``) holding the claim
``claimed_at``     when it was claimed, i.e. handed to VK (verification timeout
                   counts from here); with ``claimed_by`` it fences later writes
``sent_text``      the text sent: ``text`` with ``{{variables}}`` substituted;
                   verification compares the wall against it
``guid``           ``wall.post``'s guid for this publication (every send carries it)
``correlation_id`` kept for the post's whole life; on its log lines and messages
``published_at``   when ``wall.post`` returned ``vk_post_id``
``outcome_unknown`` true when the ``wall.post`` outcome was unknown
``resends``        re-sends with the guid after an unknown outcome (this claim)
``wall_read_at``   the last successful look at the wall that did not show the post
``attempts``       ``wall.post`` calls made for the publication that may have
                   posted (the budget spent)
``refusals``       tracker tries refused in a row (6, 9, refused connection)
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
