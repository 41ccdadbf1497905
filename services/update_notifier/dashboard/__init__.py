"""The dashboard: a small live page at ``GET /`` and the read-only JSON API behind it.

Served by the notifier itself, so the page, its API and the update stream share one
origin (no CORS, no build step, no CDN: ``static/`` holds plain HTML, CSS and
JavaScript). Its routes are registered with the notifier's others
(:mod:`services.update_notifier.routes`):

* ``GET /`` — ``static/index.html``; ``GET /dashboard/…`` — its script, style and icon.
* ``GET /api/dashboard/projects`` and ``GET /api/dashboard/projects/{id}`` — each project
  with the counts of its cached scheduled / published / suggested posts, its system
  posts by status (with publication dates), the last refresh outcome per content type
  and the seq of its latest update (for the page's "has updates" dot). Read from
  MongoDB with aggregations (:mod:`.queries`); projects through an inclusion
  projection, so tokens, callback secrets and confirmation codes never leave the database.
* ``GET /api/dashboard/timeline?limit=N[&after=<cursor>]`` — the latest N entries of
  the update log, each with the steps known for it (:mod:`.timeline`).
* Only in sandbox mode (``DASHBOARD_SANDBOX_URL`` set, e.g. ``http://127.0.0.1:8090``):
  the endpoints of :mod:`.sandbox`, which write a sandbox post or a system post.

The API requires ``NOTIFIER_TOKEN`` (when set) exactly like ``getUpdates``; the page
itself holds no data and is public.

Modules: ``values`` (stored values as JSON, pure), ``journal`` (system posts in memory,
from a change stream), ``timeline`` (an update log entry with its steps, pure),
``queries`` (MongoDB reads), ``views`` (the page and the read-only API), ``sandbox``
(the sandbox-only API).
"""
