"""The update notifier: tells the frontend which projects changed.

``ProjectUpdated`` messages (from the refresher and the post tracker) are
appended to a durable, numbered update log in MongoDB (:mod:`.update_log`, fed by
:mod:`.recorder`). The frontend reads it by polling ``POST /api/getUpdates``
(legacy or cursor mode, :mod:`.polling`, :mod:`.cursor`) or by following
``GET /api/updates/stream`` (Server-Sent Events, :mod:`.stream`), fed by one
change stream per process (:mod:`.tailer`) fanned out in memory (:mod:`.fanout`);
the same follower keeps the latest entries in memory (:mod:`.head`), which answer
cursor polls near the head of the log without reading MongoDB.

Modules: ``cursor`` (pure cursor arithmetic), ``update_log`` (MongoDB I/O),
``recorder`` (the consumer's handler), ``polling`` (answers to polls),
``payloads`` (request bodies), ``auth`` (bearer token), ``sse`` (frames),
``fanout`` (in-memory broadcast), ``tailer`` (the log's change stream), ``head``
(the latest entries in memory), ``stream`` and ``views`` (HTTP handlers),
``dashboard/`` (the live page and its API), ``routes`` (every route), ``errors``
(JSON errors), ``keys`` (application keys), ``app`` (:func:`init_app`), ``service``
(the lifespan).
"""
