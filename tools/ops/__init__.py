"""The operators' command line: ``python -m tools.ops …``.

Reads :class:`~shared.settings.Settings` from the environment, as the services do,
and talks to the same MongoDB, RabbitMQ and VK. Commands (``--help`` on each):

* ``projects add|list|show`` — :mod:`.projects`
* ``callback setup|status`` — :mod:`.callback`
* ``dlq list|replay|drop`` — :mod:`.dlq` (dead-lettered messages, :mod:`.parked`)
* ``posts list|requeue`` — :mod:`.posts` (the requeue itself: :mod:`.requeue`)

Exit codes: 0 done, 1 operational failure (one ``error: …`` line on stderr),
2 usage error. Tokens and secrets are never printed: only ``set`` / ``unset``.
"""
